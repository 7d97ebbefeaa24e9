"""Schema drift: source columns missing in the warehouse, and types that no longer fit.

cdchub adds columns a source gains but does not migrate type changes (README, "Known limits"). This
check finds both, per table, by comparing the source's `information_schema` with the warehouse's.
Types are compared by coarse family, because Debezium maps many source types onto one warehouse
type. A pair is a mismatch only when it cannot hold the values:

- the families differ and the warehouse column is not text (text is cdchub's exact fallback type,
  and holds JSON, UUIDs, enums and wide decimals by design);
- both are integers and the warehouse integer is narrower than the source's (e.g. int -> bigint at
  the source after the warehouse table was created).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from connectors.sources import connect
from core.config import HubConfig, SourceConfig
from merge.session import WarehouseSession
from ops.catalog import ReplicatedTable, replicated_tables, warehouse_types

_INT_BITS = {
    "tinyint": 8,
    "smallint": 16,
    "int2": 16,
    "mediumint": 24,
    "int": 32,
    "integer": 32,
    "int4": 32,
    "bigint": 64,
    "int8": 64,
    "hugeint": 128,
    "utinyint": 9,
    "usmallint": 17,
    "uinteger": 33,
    "ubigint": 65,
}
_FAMILIES: dict[str, tuple[str, ...]] = {
    "number": (
        "decimal",
        "numeric",
        "real",
        "double",
        "float",
        "float4",
        "float8",
        "double precision",
        "boolean",
        "bool",
        "bit",
        "year",
    ),
    "text": (
        "text",
        "varchar",
        "character varying",
        "character",
        "char",
        "string",
        "json",
        "jsonb",
        "uuid",
        "enum",
        "set",
        "user-defined",
        "tinytext",
        "mediumtext",
        "longtext",
        "citext",
        "inet",
        "cidr",
        "xml",
    ),
    "temporal": (
        "date",
        "time",
        "timestamp",
        "datetime",
        "timestamptz",
        "timetz",
        "timestamp with time zone",
        "timestamp without time zone",
        "time with time zone",
        "time without time zone",
    ),
    "binary": ("bytea", "blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary"),
}


def _base(type_name: str) -> tuple[str, bool]:
    """Lower-case type without parameters, and whether it is unsigned (MariaDB/MySQL)."""
    text = type_name.strip().lower()
    unsigned = "unsigned" in text
    text = re.sub(r"\(.*?\)", "", text).replace("unsigned", "").replace("zerofill", "")
    return " ".join(text.split()), unsigned


def int_bits(type_name: str) -> int | None:
    """Bits of an integer type (one more when unsigned), None for other types."""
    base, unsigned = _base(type_name)
    bits = _INT_BITS.get(base)
    return None if bits is None else bits + (1 if unsigned else 0)


def family(type_name: str) -> str | None:
    """`number`, `text`, `temporal`, `binary`, `array`, or None when unknown (never flagged)."""
    base, _ = _base(type_name)
    if base.endswith("[]") or base == "array":
        return "array"
    if int_bits(type_name) is not None:
        return "number"
    for name, members in _FAMILIES.items():
        if base in members:
            return name
    return None


def type_mismatch(source_type: str, warehouse_type: str) -> bool:
    """True when a warehouse column of `warehouse_type` cannot hold the source's values."""
    src, wh = family(source_type), family(warehouse_type)
    if src is None or wh is None or wh == "text":
        return False
    if src != wh:
        return True
    src_bits, wh_bits = int_bits(source_type), int_bits(warehouse_type)
    return src_bits is not None and wh_bits is not None and wh_bits < src_bits


@dataclass
class TableDrift:
    """Drift of one table (`missing`: source columns absent in the warehouse)."""

    source: str
    table: str
    missing: list[str] = field(default_factory=list)
    mismatched: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.mismatched or self.error)


def source_types(conn: Any, source: SourceConfig, namespace: str, table: str) -> dict[str, str]:
    """Column name -> declared type, from the source's information_schema."""
    if source.kind == "postgres":
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            (namespace, table),
        ).fetchall()
        return {r[0]: r[1] for r in rows}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.columns "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (namespace, table),
        )
        return {r[0]: r[1] for r in cur.fetchall()}


def compare(
    source: dict[str, str], warehouse: dict[str, str]
) -> tuple[list[str], list[dict[str, str]]]:
    """(source columns missing in the warehouse, columns whose types no longer fit)."""
    missing = sorted(c for c in source if c not in warehouse)
    mismatched = [
        {"column": c, "source": source[c], "warehouse": warehouse[c]}
        for c in sorted(source)
        if c in warehouse and type_mismatch(source[c], warehouse[c])
    ]
    return missing, mismatched


def table_drift(session: WarehouseSession, config: HubConfig, table: ReplicatedTable) -> TableDrift:
    """The drift of one replicated table (an unreachable source is reported, not raised)."""
    drift = TableDrift(table.source, f"{table.source_schema}.{table.source_table}")
    try:
        source = config.source(table.source)
        with connect(source) as conn:
            src = source_types(conn, source, table.source_schema, table.source_table)
    except Exception as exc:
        drift.error = f"cannot read source columns: {exc}"
        return drift
    wh = warehouse_types(session, table.warehouse_schema, table.current_table)
    drift.missing, drift.mismatched = compare(src, wh)
    return drift


def schema_drift(session: WarehouseSession, config: HubConfig) -> list[TableDrift]:
    """Drift of every replicated table of a configured source."""
    configured = {s.name for s in config.sources}
    return [
        table_drift(session, config, t)
        for t in replicated_tables(session)
        if t.source in configured
    ]
