"""`cdchub render-sql`: the statement plan of one batch for one table, rendered for a warehouse.

Nothing connects to a database: the table's shape comes from the demo schemas or from `--columns`,
and each warehouse client contributes only the statements of its bulk path (`stage_sql`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlglot import exp

from core.model import ColumnType
from dbschemas.demo_tables import TableShape
from merge import plan
from merge.dialects import dialect_for
from merge.naming import table_names

StageSql = Callable[[str, Sequence[tuple[str, ColumnType]]], list[exp.Expression]]


def _stage_sql(kind: str) -> StageSql:
    """The bulk path of a warehouse's client (imported lazily: each pulls in its driver)."""
    if kind == "postgres":
        from connectors.warehouses.postgres_client import PostgresSession

        return PostgresSession.stage_sql
    if kind == "snowflake":
        from connectors.warehouses.snowflake_client import SnowflakeSession

        return SnowflakeSession.stage_sql
    from connectors.warehouses.duckdb_client import DuckDBSession

    return DuckDBSession.stage_sql


def _labels(target: plan.MergeTarget) -> list[tuple[exp.Expression, str]]:
    """Each builder's statement with its name, to label what `merge_statements` returns."""
    named: list[tuple[exp.Expression | None, str]] = [
        (plan.remove_applied(target), "1. remove_applied: drop versions history already has"),
        (plan.drop_table(target.keys), "2. collect_keys: the keys this segment touches"),
        (plan.collect_keys(target), "2. collect_keys"),
        (plan.empty_table(target.keys), "2. collect_keys: the keys this segment touches"),
        (plan.fill_keys(target), "2. collect_keys"),
        (plan.insert_versions(target), "3. insert_versions: append the new versions, open"),
        (plan.relink(target), "4. relink: valid_from/valid_to/is_current of touched keys"),
        (plan.carry_forward(target), "5. carry_forward: deletes take the values they close"),
    ]
    delete, insert = plan.refresh_current(target)
    named += [(delete, "6. refresh_current: replace touched keys"), (insert, "6. refresh_current")]
    return [(s, label) for s, label in named if s is not None]


def render_plan(kind: str, shape: TableShape) -> str:
    """Every statement of one batch for `shape`, pretty-printed in the `kind` dialect."""
    dialect = dialect_for(kind)
    # A shape's namespace is its source's default one (public, or the MariaDB database): bare names.
    names = table_names(shape.table, shape.table.namespace)
    target = plan.MergeTarget(names, shape.columns, shape.key)
    if not dialect.TRANSACTIONAL_DDL:
        target = target.with_own_scratch()
    stage_sql = _stage_sql(kind)(target.stage_name, plan.stage_columns(target))
    prepare: list[exp.Expression] = []
    if target.reuse_scratch:
        # Created once per table before the batch's transaction, then emptied and refilled with DML.
        prepare = [
            plan.drop_table(target.stage),
            stage_sql[0],
            plan.drop_table(target.keys),
            plan.create_table(target.keys, plan.key_columns(target), dialect, temporary=True),
        ]
        loading = [plan.empty_table(target.stage), *stage_sql[1:]]
    else:
        loading = [plan.drop_table(target.stage), *stage_sql]
    truncate = plan.stage_truncate(
        target, "<position>", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "tx"
    )
    sections: list[tuple[str, list[exp.Expression]]] = [
        ("stage: load the segment's rows (the client's bulk path)", loading),
        ("stage, for a truncate segment instead: one deleted version per live key", [truncate]),
    ]
    labels = _labels(target)
    for statement in plan.merge_statements(target):
        label = next((name for s, name in labels if s == statement), "merge step")
        sections.append((label, [statement]))
    columns = [c for c, _ in plan.OFFSETS_COLUMNS]
    sections.append(
        (
            "offsets: the next Kafka offsets, in the same transaction",
            [
                plan.delete_offsets("<group>", "<topic>", [0]),
                plan.insert_rows(plan.control_table(plan.OFFSETS), columns),
            ],
        )
    )
    batch_columns = [c for c, _ in plan.BATCHES_COLUMNS]
    sections.append(
        (
            "batch log: one row per table",
            [plan.insert_rows(plan.control_table(plan.BATCHES), batch_columns)],
        )
    )
    out = [
        f"-- {shape.table} -> {target.names.schema}.{target.names.current} and "
        f"{target.names.schema}.{target.names.history}, rendered for {kind}",
        f"-- key: {', '.join(shape.key)}",
    ]
    if prepare:
        out.append(
            f"\n-- prepare, once per table and before any transaction: on {kind} DDL commits "
            "the open transaction (docs/warehouses.md)"
        )
        out.extend(dialect.render(s, pretty=True) + ";" for s in prepare)
    out.append("\n" + dialect.render(exp.Transaction()) + ";")
    for title, statements in sections:
        out.append(f"\n-- {title}")
        out.extend(dialect.render(s, pretty=True) + ";" for s in statements)
    out.append("\n" + dialect.render(exp.Commit()) + ";")
    return "\n".join(out)
