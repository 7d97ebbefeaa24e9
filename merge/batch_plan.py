"""`BatchPlan`: the ordered, labelled steps of one table's batch, as a value.

Built once per table and batch (`plan_table_batch`), executed step by step by `Scd2Engine` inside the
batch's transaction, and printed by `cdchub render-sql`; the golden files are rendered from it. So
what a user reads is what the warehouse runs.

A batch of one table is one or more segments (a truncate is a segment of its own). Each segment is
staged (the client's bulk path, or the truncate's deleted versions), then merged by the idempotent
steps of `merge.plan`. `prepare` holds what the scratch strategy runs once per table *before* the
transaction (Snowflake's DDL would commit it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from sqlglot import exp

from core.model import ColumnType
from merge import plan, shapes

if TYPE_CHECKING:
    from merge.dialect import Dialect


class StepKind(StrEnum):
    """What the engine does with a step."""

    EXECUTE = "execute"  # run the statement
    LOAD = "load"  # bulk-load the segment's rows into the stage (the client's path)
    COUNT = "count"  # run the query: the number of staged versions the segment adds


@dataclass(frozen=True)
class Step:
    """One step of a plan: a label (the builder's name), what it is for, and its statement.

    A `LOAD` step has no statement: the client's bulk path loads `segment`'s rows (none when not
    `rows`), creating the stage first when `create` (see `WarehouseSession.load_stage`).
    """

    label: str
    title: str
    kind: StepKind = StepKind.EXECUTE
    statement: exp.Expression | None = None
    segment: int = 0
    create: bool = True
    rows: bool = True


@dataclass(frozen=True)
class SegmentSpec:
    """What the plan needs to know of a segment: rows to stage, or one truncate."""

    unavailable: tuple[str, ...] = ()
    truncate: tuple[str, dt.datetime, str | None] | None = None  # (position, commit time, tx id)
    snapshot: bool = False  # some change is a snapshot row (`r`)


class ScratchStrategy(Protocol):
    """How a table's stage and key tables live across segments (chosen by the dialect)."""

    name: str

    def target(self, target: shapes.MergeTarget) -> shapes.MergeTarget:
        """The target with the scratch table names this strategy uses."""
        ...

    def prepare(self, target: shapes.MergeTarget, dialect: Dialect) -> list[Step]:
        """Steps run once per table and session, before any batch transaction."""
        ...

    def load(self, target: shapes.MergeTarget, segment: int) -> list[Step]:
        """Steps that leave the stage holding exactly the segment's rows."""
        ...

    def keys(self, target: shapes.MergeTarget) -> list[Step]:
        """Steps that leave the key table holding exactly the keys of the stage."""
        ...


@dataclass(frozen=True)
class BatchPlan:
    """The plan of one table's batch: `prepare` (before the transaction), then `steps` (inside)."""

    target: shapes.MergeTarget
    prepare: tuple[Step, ...]
    steps: tuple[Step, ...]
    segments: tuple[SegmentSpec, ...] = field(default=())

    def statements(self) -> list[exp.Expression]:
        """Every statement of `steps` in order (LOAD steps, which the client runs, left out)."""
        return [s.statement for s in self.steps if s.statement is not None]

    def render(
        self,
        dialect: Dialect,
        stage_sql: StageSql | None = None,
        *,
        transaction: bool = True,
    ) -> str:
        """The plan as SQL text, each step under its label; `stage_sql` renders LOAD steps the way
        the warehouse's client runs them (without it they are a comment)."""
        out: list[str] = []

        def emit(steps: Sequence[Step], headed: bool) -> None:
            segment = -1
            for step in steps:
                if headed and step.segment != segment and len(self.segments) > 1:
                    segment = step.segment
                    out.append(f"\n-- segment {segment + 1}: {self._describe(segment)}")
                out.append(f"\n-- {step.label}: {step.title}")
                if step.statement is not None:
                    out.append(dialect.render(step.statement, pretty=True) + ";")
                elif stage_sql is not None:
                    columns = shapes.stage_columns(self.target)
                    for statement in stage_sql(self.target.stage_name, columns, step.create):
                        # Without rows the client runs only the DDL of its path.
                        if step.rows or isinstance(statement, exp.Create):
                            out.append(dialect.render(statement, pretty=True) + ";")
                else:
                    out.append("-- (the client's bulk path)")

        if self.prepare:
            out.append("-- prepare: once per table and session, before any transaction")
            emit(self.prepare, headed=False)
        if transaction:
            out.append("\n" + dialect.render(exp.Transaction()) + ";")
        emit(self.steps, headed=True)
        return "\n".join(out).lstrip("\n")

    def _describe(self, segment: int) -> str:
        spec = self.segments[segment]
        if spec.truncate is not None:
            return "a truncate (one deleted version per live key)"
        parts = ["changes"]
        if spec.snapshot:
            parts.append("some of them snapshot rows")
        if spec.unavailable:
            parts.append(f"some without unchanged TOAST values ({', '.join(spec.unavailable)})")
        return ", ".join(parts)


StageSql = Callable[[str, Sequence[tuple[str, ColumnType]], bool], list[exp.Expression]]


def plan_table_batch(
    target: shapes.MergeTarget,
    segments: Sequence[SegmentSpec],
    scratch: ScratchStrategy,
    dialect: Dialect,
) -> BatchPlan:
    """The plan of one table's batch: for each segment, stage it, then the merge steps 1-6.

    Every step is idempotent (see `merge.plan`), so a replayed batch changes nothing; the COUNT step
    runs after `remove_applied`, so it counts only versions history does not have yet.
    """
    target = scratch.target(target)
    steps: list[Step] = []
    for index, spec in enumerate(segments):
        segment: list[Step] = scratch.load(target, index)
        if spec.truncate is not None:
            position, commit_time, tx_id = spec.truncate
            segment = [
                replace(s, rows=False, title="an empty stage") if s.kind is StepKind.LOAD else s
                for s in segment
            ]
            segment.append(
                Step(
                    "stage_truncate",
                    "one deleted version per key live just before the truncate",
                    statement=plan.stage_truncate(target, position, commit_time, tx_id),
                )
            )
        if spec.snapshot:
            segment.append(
                Step(
                    "drop_unchanged_snapshot_rows",
                    "re-read rows equal to their key's previous version are no change (backfill)",
                    statement=plan.drop_unchanged_snapshot_rows(target),
                )
            )
        segment += [
            Step(
                "remove_applied",
                "drop staged versions history already has",
                statement=plan.remove_applied(target),
            ),
            *scratch.keys(target),
            Step(
                "count_staged",
                "the versions this segment adds",
                StepKind.COUNT,
                exp.select(exp.Count(this=exp.Star())).from_(target.stage),
            ),
            Step(
                "insert_versions",
                "append the new versions, open",
                statement=plan.insert_versions(target),
            ),
            Step(
                "relink",
                "valid_from/valid_to/is_current of the touched keys",
                statement=plan.relink(target),
            ),
        ]
        fill = plan.carry_unavailable(target, spec.unavailable)
        if fill is not None:
            segment.append(
                Step(
                    "carry_unavailable",
                    "unchanged TOAST values from the key's previous version",
                    statement=fill,
                )
            )
        forward = plan.carry_forward(target)
        if forward is not None:
            segment.append(
                Step("carry_forward", "deletes take the values they close", statement=forward)
            )
        delete, insert = plan.refresh_current(target)
        segment += [
            Step("refresh_current", "drop the touched keys from current", statement=delete),
            Step("refresh_current", "insert their live current versions", statement=insert),
        ]
        steps += [_in_segment(s, index) for s in segment]
    return BatchPlan(target, tuple(scratch.prepare(target, dialect)), tuple(steps), tuple(segments))


def _in_segment(step: Step, index: int) -> Step:
    return replace(step, segment=index)
