"""Warehouse naming: where a source table lands, and the reserved `_cdc_` metadata columns.

One schema per source, named by the source's `name`. The current table keeps the source table's name; the
history table adds `_history`. A table outside the source's default namespace (a PostgreSQL schema other
than `public`, a MariaDB database other than the configured one) is prefixed with its namespace and `__`
so two tables of one source never collide.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import MergeError
from core.model import TableId

META_PREFIX = "_cdc_"
CONTROL_SCHEMA = "_cdchub"
HISTORY_SUFFIX = "_history"

# History metadata columns, in table order, with their semantic kinds (see docs/scd2.md).
VALID_FROM = "_cdc_valid_from"
VALID_TO = "_cdc_valid_to"
IS_CURRENT = "_cdc_is_current"
IS_DELETED = "_cdc_is_deleted"
OP = "_cdc_op"
SOURCE_POS = "_cdc_source_pos"
TX_ID = "_cdc_tx_id"
INGESTED_AT = "_cdc_ingested_at"

HISTORY_META: tuple[tuple[str, str], ...] = (
    (VALID_FROM, "timestamptz"),
    (VALID_TO, "timestamptz"),
    (IS_CURRENT, "boolean"),
    (IS_DELETED, "boolean"),
    (OP, "string"),
    (SOURCE_POS, "string"),
    (TX_ID, "string"),
    (INGESTED_AT, "timestamptz"),
)
# The current table keeps a few of them so users can see how fresh each row is.
CURRENT_META: tuple[tuple[str, str], ...] = (
    (VALID_FROM, "timestamptz"),
    (OP, "string"),
    (SOURCE_POS, "string"),
    (TX_ID, "string"),
    (INGESTED_AT, "timestamptz"),
)


@dataclass(frozen=True)
class TableNames:
    """Where one source table lives in the warehouse."""

    schema: str
    current: str
    history: str


def default_namespace(kind: str, database: str) -> str:
    """The namespace whose tables keep their bare names: `public` or the configured database."""
    return "public" if kind == "postgres" else database


def table_names(table: TableId, default_ns: str) -> TableNames:
    """The warehouse schema, current-table and history-table names of a source table."""
    base = table.table if table.namespace == default_ns else f"{table.namespace}__{table.table}"
    return TableNames(schema=table.source, current=base, history=base + HISTORY_SUFFIX)


def check_column_names(table: TableId, names: tuple[str, ...]) -> None:
    """Refuse source columns that collide with the reserved metadata prefix."""
    clashing = [n for n in names if n.lower().startswith(META_PREFIX)]
    if clashing:
        raise MergeError(
            f"source columns {clashing} use the reserved prefix {META_PREFIX!r}; "
            "rename them or exclude the table",
            table=str(table),
        )
