"""Scratch strategies: where a segment is staged and its keys collected, chosen by the dialect.

`TempPerSegment` (DuckDB, PostgreSQL): temporary stage and key tables created inside the batch's
transaction for each segment; DDL there is transactional, so a failed batch leaves nothing.

`PersistentPerTable` (Snowflake): DDL commits the open transaction, so each table gets its own stage
and key tables, created once per session *before* any batch transaction and then only emptied
(`DELETE`) and refilled (`INSERT`) inside it: a batch runs DML only and commits as one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from merge import ddl, plan, shapes
from merge.batch_plan import Step, StepKind
from merge.naming import fit_identifier

if TYPE_CHECKING:
    from merge.dialect import Dialect


class TempPerSegment:
    """A temporary stage and key table per segment, created inside the transaction."""

    name = "temp-per-segment"

    def target(self, target: shapes.MergeTarget) -> shapes.MergeTarget:
        """The shared names `_cdc_stage` / `_cdc_keys`: temporary tables are per session."""
        return target

    def prepare(self, target: shapes.MergeTarget, dialect: Dialect) -> list[Step]:
        """Nothing: every segment creates its own tables."""
        return []

    def load(self, target: shapes.MergeTarget, segment: int) -> list[Step]:
        """Drop the previous segment's stage, then create and load a new one."""
        return [
            Step(
                "drop_stage",
                "the previous segment's stage",
                statement=ddl.drop_table(target.stage),
            ),
            Step("load_stage", "create the stage and bulk-load the segment", StepKind.LOAD),
        ]

    def keys(self, target: shapes.MergeTarget) -> list[Step]:
        """`DROP` then `CREATE TEMP TABLE … AS SELECT DISTINCT <key>`."""
        return [
            Step(
                "collect_keys",
                "drop the previous key table",
                statement=ddl.drop_table(target.keys),
            ),
            Step(
                "collect_keys", "the keys this segment touches", statement=plan.collect_keys(target)
            ),
        ]


class PersistentPerTable:
    """A stage and key table per table, made before the transaction; DML only inside it."""

    name = "persistent-per-table"

    def target(self, target: shapes.MergeTarget) -> shapes.MergeTarget:
        """`_cdc_stage__<schema>__<table>` and `_cdc_keys__…`: one pair per table."""
        suffix = f"{target.names.schema}__{target.names.current}"
        # Shortened like table names when past Snowflake's 255 bytes (merge.naming).
        return replace(
            target,
            stage_name=fit_identifier(f"{shapes.STAGE}__{suffix}", 255),
            keys_name=fit_identifier(f"{shapes.KEYS}__{suffix}", 255),
        )

    def prepare(self, target: shapes.MergeTarget, dialect: Dialect) -> list[Step]:
        """(Re)create the table's stage and key tables, empty."""
        return [
            Step(
                "drop_stage",
                "a stage left by an earlier session",
                statement=ddl.drop_table(target.stage),
            ),
            Step("create_stage", "the table's own stage, empty", StepKind.LOAD, rows=False),
            Step(
                "drop_keys",
                "a key table left by an earlier session",
                statement=ddl.drop_table(target.keys),
            ),
            Step(
                "create_keys",
                "the table's own key table",
                statement=ddl.create_table(
                    target.keys, shapes.key_columns(target), dialect, temporary=True
                ),
            ),
        ]

    def load(self, target: shapes.MergeTarget, segment: int) -> list[Step]:
        """Empty the stage with DML, then bulk-load into it (no DDL)."""
        return [
            Step(
                "empty_stage",
                "DML, so it stays in the transaction",
                statement=plan.empty_table(target.stage),
            ),
            Step("load_stage", "bulk-load the segment", StepKind.LOAD, create=False),
        ]

    def keys(self, target: shapes.MergeTarget) -> list[Step]:
        """`DELETE FROM` then `INSERT INTO … SELECT DISTINCT <key>`."""
        return [
            Step("collect_keys", "empty the key table", statement=plan.empty_table(target.keys)),
            Step("collect_keys", "the keys this segment touches", statement=plan.fill_keys(target)),
        ]
