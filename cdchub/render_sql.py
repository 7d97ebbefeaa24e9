"""`cdchub render-sql`: the plan of one batch for one table, rendered for a warehouse.

Nothing connects to a database: the table's shape comes from the demo schemas or from `--columns`.
The statements are the `BatchPlan` the engine executes (`merge.batch_plan`), for a batch of two
segments: changes (some of them snapshot rows, some lacking unchanged TOAST values), then a truncate. Each warehouse client
contributes only the statements of its bulk path (`stage_sql`).
"""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from connectors.warehouses import plugin
from dbschemas.demo_tables import TableShape
from merge import control, shapes, sqltree
from merge.batch_plan import SegmentSpec, plan_table_batch
from merge.naming import NameBook


def render_plan(kind: str, shape: TableShape) -> str:
    """Every statement of one batch for `shape`, pretty-printed in the `kind` dialect."""
    warehouse = plugin(kind)
    dialect = warehouse.dialect()
    # A shape's namespace is its source's default one (public, or the MariaDB database): bare names.
    # A name too long for the warehouse gets the short form `cdchub run` would record.
    book = NameBook(dialect.fold, dialect.MAX_IDENTIFIER_LENGTH)
    names, _ = book.resolve(shape.table, shape.table.namespace)
    target = shapes.MergeTarget(names, shape.columns, shape.key)
    segments = [
        SegmentSpec(unavailable=tuple(target.value_columns), snapshot=True),
        SegmentSpec(truncate=("<position>", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "tx")),
    ]
    batch = plan_table_batch(target, segments, dialect.SCRATCH, dialect)
    out = [
        f"-- {shape.table} -> {target.names.schema}.{target.names.current} and "
        f"{target.names.schema}.{target.names.history}, rendered for {kind}",
        f"-- key: {', '.join(shape.key)}; scratch tables: {dialect.SCRATCH.name}",
        "",
        batch.render(dialect, warehouse.stage_sql()),
    ]
    # The batch's control writes, in the same transaction (built by the builders the engine calls).
    offsets = [c for c, _ in control.OFFSETS_COLUMNS]
    batches = [c for c, _ in control.BATCHES_COLUMNS]
    writes = [
        ("offsets: the next Kafka offsets", control.delete_offsets("<group>", "<topic>", [0])),
        ("offsets", sqltree.insert_rows(control.control_table(control.OFFSETS), offsets)),
        (
            "batch log: one row per table",
            sqltree.insert_rows(control.control_table(control.BATCHES), batches),
        ),
    ]
    for title, statement in writes:
        out.append(f"\n-- {title}")
        out.append(dialect.render(statement, pretty=True) + ";")
    out.append("\n" + dialect.render(exp.Commit()) + ";")
    return "\n".join(out)
