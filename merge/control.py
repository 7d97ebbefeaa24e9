"""cdchub's own control schema (`_cdchub`): its tables' columns, their DDL and the queries over them.

Offsets, the table registry, the batch log, checks, parked records, forced releases, the schema log
and the recorded column types all live here; the engine writes them in the batch's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from core.model import ColumnType
from merge.ddl import create_schema, create_table
from merge.naming import CONTROL_SCHEMA
from merge.sqltree import col, table

if TYPE_CHECKING:
    from merge.dialect import Dialect

OFFSETS = "kafka_offsets"
TABLES = "tables"
BATCHES = "batches"
BATCH_OFFSETS = "batch_offsets"
CHECKS = "checks"
PARKED = "parked_records"
SCHEMAS = "schema_log"
COLUMNS = "columns"
FORCED = "forced_releases"

OFFSETS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("consumer_group", "string"),
    ("topic", "string"),
    ("partition", "int32"),
    ("next_offset", "int64"),
    ("updated_at", "timestamptz"),
)
TABLES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source", "string"),
    ("source_kind", "string"),
    ("source_database", "string"),
    ("source_schema", "string"),
    ("source_table", "string"),
    ("warehouse_schema", "string"),
    ("current_table", "string"),
    ("history_table", "string"),
    ("key_columns", "string"),
    ("registered_at", "timestamptz"),
)
BATCHES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("batch_id", "string"),
    ("source", "string"),
    ("table_name", "string"),
    ("events", "int64"),
    ("versions", "int64"),
    ("lag_min_ms", "float64"),
    ("lag_p50_ms", "float64"),
    ("lag_p95_ms", "float64"),
    ("lag_p99_ms", "float64"),
    ("lag_max_ms", "float64"),
    ("first_commit_time", "timestamptz"),
    ("last_commit_time", "timestamptz"),
    ("committed_at", "timestamptz"),
)

# The next offset of every partition a batch read, so a batch row leads back to its Kafka records.
BATCH_OFFSETS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("batch_id", "string"),
    ("consumer_group", "string"),
    ("topic", "string"),
    ("partition", "int32"),
    ("next_offset", "int64"),
    ("committed_at", "timestamptz"),
)
# One row per check per table per run of `cdchub verify` (or of the checks inside `cdchub run`).
CHECKS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "string"),
    ("checked_at", "timestamptz"),
    ("source", "string"),
    ("table_name", "string"),
    ("check_name", "string"),
    ("ok", "boolean"),
    ("observed", "float64"),
    ("detail", "string"),
)


# Stream records of a table stopped by an incompatible schema change, stored raw with the offsets so
# a restart (after `cdchub schema accept`) applies them (see cdc_consumers/runner.py).
PARKED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("consumer_group", "string"),
    ("topic", "string"),
    ("partition", "int32"),
    ("record_offset", "int64"),
    ("record_timestamp", "int64"),
    ("record_key", "bytes"),
    ("record_value", "bytes"),
    ("parked_at", "timestamptz"),
    ("reason", "string"),
)


# Transactions applied without transaction consistency (stalled or larger than the buffer).
FORCED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("consumer_group", "string"),
    ("source", "string"),
    ("tx_id", "string"),
    ("events_arrived", "int64"),
    ("events_expected", "int64"),
    ("reason", "string"),
    ("released_at", "timestamptz"),
)


# Every distinct source schema a table has had, in the order first seen (schema evolution audit).
SCHEMAS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source", "string"),
    ("source_schema", "string"),
    ("source_table", "string"),
    ("columns", "string"),
    ("key_columns", "string"),
    ("first_position", "string"),
    ("first_seen_at", "timestamptz"),
)


# The source type each warehouse column was created or last altered for: after a restart the engine
# judges type changes against these, not against whatever the first event says.
COLUMNS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("warehouse_schema", "string"),
    ("history_table", "string"),
    ("column_name", "string"),
    ("column_type", "string"),
    ("updated_at", "timestamptz"),
)


def control_table(name: str) -> exp.Table:
    """A table of cdchub's own control schema."""
    return table(name, CONTROL_SCHEMA)


def control_ddl(dialect: Dialect) -> list[exp.Expression]:
    """Create the control schema and its tables (offsets, registry, batch log, checks)."""
    return [
        create_schema(CONTROL_SCHEMA),
        *(
            create_table(control_table(name), [(c, ColumnType(k)) for c, k in cols], dialect)
            for name, cols in (
                (OFFSETS, OFFSETS_COLUMNS),
                (TABLES, TABLES_COLUMNS),
                (BATCHES, BATCHES_COLUMNS),
                (BATCH_OFFSETS, BATCH_OFFSETS_COLUMNS),
                (CHECKS, CHECKS_COLUMNS),
                (PARKED, PARKED_COLUMNS),
                (SCHEMAS, SCHEMAS_COLUMNS),
                (COLUMNS, COLUMNS_COLUMNS),
                (FORCED, FORCED_COLUMNS),
            )
        ),
    ]


def delete_offsets(group: str, topic: str, partitions: Sequence[int]) -> exp.Expression:
    """Remove the stored offsets that are about to be replaced."""
    return exp.delete(
        control_table(OFFSETS),
        where=exp.and_(
            exp.EQ(this=col("consumer_group"), expression=exp.Literal.string(group)),
            exp.EQ(this=col("topic"), expression=exp.Literal.string(topic)),
            exp.In(this=col("partition"), expressions=[exp.Literal.number(p) for p in partitions]),
        ),
    )


def select_offsets(group: str) -> exp.Expression:
    """The stored next offsets of a consumer group."""
    return (
        exp.select(col("topic"), col("partition"), col("next_offset"))
        .from_(control_table(OFFSETS))
        .where(exp.EQ(this=col("consumer_group"), expression=exp.Literal.string(group)))
    )


def delete_parked(group: str, topic: str, partition: int, offsets: Sequence[int]) -> exp.Expression:
    """Remove parked records that were applied (their transaction completed)."""
    return exp.delete(
        control_table(PARKED),
        where=exp.and_(
            exp.EQ(this=col("consumer_group"), expression=exp.Literal.string(group)),
            exp.EQ(this=col("topic"), expression=exp.Literal.string(topic)),
            exp.EQ(this=col("partition"), expression=exp.Literal.number(partition)),
            exp.In(this=col("record_offset"), expressions=[exp.Literal.number(o) for o in offsets]),
        ),
    )


def delete_parked_reason(group: str, reason: str) -> exp.Expression:
    """Remove every stored record of a consumer group parked for `reason`."""
    return exp.delete(
        control_table(PARKED),
        where=exp.and_(
            exp.EQ(this=col("consumer_group"), expression=exp.Literal.string(group)),
            exp.EQ(this=col("reason"), expression=exp.Literal.string(reason)),
        ),
    )


def select_parked(group: str) -> exp.Expression:
    """The parked records of a consumer group, in stream order."""
    return (
        exp.select(
            *(col(c) for c in ("topic", "partition", "record_offset", "record_timestamp")),
            col("record_key"),
            col("record_value"),
            col("reason"),
        )
        .from_(control_table(PARKED))
        .where(exp.EQ(this=col("consumer_group"), expression=exp.Literal.string(group)))
        .order_by(col("topic"), col("partition"), col("record_offset"))
    )


def select_schema_logged(source: str, namespace: str, name: str, columns: str) -> exp.Expression:
    """Whether one schema of a table is in the schema log already."""
    return (
        exp.select(exp.Literal.number(1))
        .from_(control_table(SCHEMAS))
        .where(
            exp.and_(
                *(
                    exp.EQ(this=col(c), expression=exp.Literal.string(v))
                    for c, v in (
                        ("source", source),
                        ("source_schema", namespace),
                        ("source_table", name),
                        ("columns", columns),
                    )
                )
            )
        )
    )


def select_registered() -> exp.Select:
    """Every registered source table with its warehouse names (`_cdchub.tables`)."""
    columns = ("source", "source_schema", "source_table", "warehouse_schema", "current_table",
               "history_table")  # fmt: skip
    return exp.select(*(col(c) for c in columns)).from_(control_table(TABLES))


def _table_match(schema: str, history: str) -> exp.Expr:
    return exp.and_(
        exp.EQ(this=col("warehouse_schema"), expression=exp.Literal.string(schema)),
        exp.EQ(this=col("history_table"), expression=exp.Literal.string(history)),
    )


def select_column_types(schema: str, history: str) -> exp.Expression:
    """The recorded source types of one table's warehouse columns."""
    return (
        exp.select(col("column_name"), col("column_type"))
        .from_(control_table(COLUMNS))
        .where(_table_match(schema, history))
    )


def delete_column_types(schema: str, history: str, names: Sequence[str]) -> exp.Expression:
    """Forget the recorded types of some columns (before recording new ones)."""
    return exp.delete(
        control_table(COLUMNS),
        where=exp.and_(
            _table_match(schema, history),
            exp.In(this=col("column_name"), expressions=[exp.Literal.string(n) for n in names]),
        ),
    )
