"""`cdchub verify`: the warehouse against the source, value for value, and the history invariants.

The source database is the oracle. Values are compared after a documented normalisation
(docs/verify.md): instants as UTC instants, decimals by numeric value (or canonical text where the
warehouse keeps them as text), JSON as parsed documents, REAL as 32-bit floats, NaN as 'NaN', binary
as bytes, UUIDs as text, bit strings without leading zeros, ISO intervals as (months, days, µs).
Anything else must be equal as is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import struct
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlglot import exp

from cdc_consumers.converters.numeric import decimal_text
from cdc_consumers.converters.temporal import interval_parts
from connectors.sources import connect, list_tables, read_table, table_is_empty
from core.config import HubConfig
from core.errors import ConfigError
from merge import checks, shapes, sqltree
from merge.session import WarehouseSession
from ops.catalog import ReplicatedTable, replicated_tables, warehouse_types

MAX_SAMPLES = 5


@dataclass
class TableReport:
    """The verdict on one table."""

    source: str
    table: str
    warehouse_table: str
    source_rows: int = 0
    warehouse_rows: int = 0
    missing: list[Any] = field(default_factory=list)
    unexpected: list[Any] = field(default_factory=list)
    different: list[dict[str, Any]] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    current_violations: int = 0
    link_violations: int = 0
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (
            self.error
            or self.missing_columns
            or self.counts.get("missing")
            or self.counts.get("unexpected")
            or self.counts.get("different")
            or self.current_violations
            or self.link_violations
            or self.source_rows != self.warehouse_rows
        )

    def to_json(self) -> dict[str, Any]:
        """The per-table entry of `verify --json`."""
        return {
            "ok": self.ok,
            "source": self.source,
            "table": self.table,
            "warehouse_table": self.warehouse_table,
            # A table that could not be compared has no counts (None), not zeros.
            "source_rows": None if self.error else self.source_rows,
            "warehouse_rows": None if self.error else self.warehouse_rows,
            "missing_keys": self.counts.get("missing", 0),
            "unexpected_keys": self.counts.get("unexpected", 0),
            "different_rows": self.counts.get("different", 0),
            "missing_columns": self.missing_columns,
            "history": {
                "keys_without_exactly_one_current": self.current_violations,
                "broken_validity_links": self.link_violations,
            },
            "samples": {
                "missing": [_jsonable(k) for k in self.missing],
                "unexpected": [_jsonable(k) for k in self.unexpected],
                "different": _jsonable(self.different),
            },
            "error": self.error,
        }


def _float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def _text_form(value: Any) -> Any:
    """Text in a VARCHAR warehouse column that carries a typed source value (docs/verify.md)."""
    if isinstance(value, str):
        if _BITS.match(value):
            return ("bits", value.lstrip("0"))
        if _INTERVAL.match(value):
            try:
                return ("interval", interval_parts(value))
            except ValueError:
                return value
        return value
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, bytes | memoryview | bytearray):  # MySQL BIT(n), big-endian
        number = int.from_bytes(bytes(value), "big")
        return ("bits", format(number, "b").lstrip("0") if number else "")
    if isinstance(value, dt.time) and value.tzinfo is not None:
        # timetz: Debezium sends the UTC time of day (`11:14:15.123456Z`).
        offset = value.utcoffset() or dt.timedelta(0)
        utc = (dt.datetime.combine(dt.date(2000, 1, 1), value.replace(tzinfo=None)) - offset).time()
        return utc.isoformat() + "Z"
    return value


_BITS = re.compile(r"^[01]+$")
_INTERVAL = re.compile(r"^P(?=.*\d)[-\d.YMWDTHS]*$")


def normalize(value: Any, wh_type: str = "") -> Any:
    """A comparable form of a value read from either side (see the module docstring)."""
    if value is None:
        return None
    wh_type = wh_type.upper()
    if wh_type in ("JSON", "JSONB"):  # JSONB: the PostgreSQL warehouse
        parsed = json.loads(value) if isinstance(value, str | bytes) else value
        return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if wh_type == "VARCHAR" and not isinstance(value, list | tuple | float | bool | int):
        return _text_form(value)
    if isinstance(value, bool):
        return int(value)
    if wh_type == "BOOLEAN" and isinstance(value, bytes):  # MySQL BIT(1) read by PyMySQL
        return int.from_bytes(value, "big")
    if isinstance(value, float):
        if value != value:  # NaN equals nothing, not even itself
            return "NaN"
        if wh_type in ("REAL", "FLOAT", "FLOAT4"):
            return _float32(value)
        return value
    if isinstance(value, Decimal):
        return value if value.is_finite() else str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo:
            return value.astimezone(dt.UTC)
        # Sources are read in a UTC session, so a naive instant from one (MariaDB TIMESTAMP) is UTC.
        return value.replace(tzinfo=dt.UTC) if "TIME ZONE" in wh_type else value
    if isinstance(value, dt.timedelta):
        if dt.timedelta(0) <= value < dt.timedelta(days=1):
            return (dt.datetime.min + value).time()
        return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        element_type = wh_type[:-2] if wh_type.endswith("[]") else ""
        return [normalize(v, element_type) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


@dataclass
class RowDiff:
    """How two row sets keyed alike differ: counts, and a few samples of each kind."""

    counts: dict[str, int]
    missing: list[Any]
    unexpected: list[Any]
    different: list[dict[str, Any]]

    @property
    def equal(self) -> bool:
        return not any(self.counts.values())


def diff_rows(
    columns: list[str],
    expected: list[tuple[Any, ...]],
    actual: list[tuple[Any, ...]],
    key_columns: list[str],
    wh_types: dict[str, str],
) -> RowDiff:
    """Compare `expected` (the source) with `actual` (the warehouse), both in `columns` order."""
    key_index = [columns.index(k) for k in key_columns]

    def keyed(rows: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], list[Any]]:
        out = {}
        for row in rows:
            values = [normalize(v, wh_types.get(c, "")) for c, v in zip(columns, row, strict=True)]
            out[tuple(str(values[i]) for i in key_index)] = values
        return out

    src, wh = keyed(expected), keyed(actual)
    missing = [k for k in src if k not in wh]
    unexpected = [k for k in wh if k not in src]
    different = []
    for k in src.keys() & wh.keys():
        if src[k] != wh[k]:
            cols = {
                columns[i]: {"source": src[k][i], "warehouse": wh[k][i]}
                for i in range(len(columns))
                if src[k][i] != wh[k][i]
            }
            different.append({"key": list(k), "columns": cols})
    return RowDiff(
        {"missing": len(missing), "unexpected": len(unexpected), "different": len(different)},
        missing[:MAX_SAMPLES],
        unexpected[:MAX_SAMPLES],
        different[:MAX_SAMPLES],
    )


def verify_table(
    session: WarehouseSession, config: HubConfig, table: ReplicatedTable
) -> TableReport:
    """Compare one table with its source and check its history invariants."""
    report = TableReport(
        table.source,
        f"{table.source_schema}.{table.source_table}",
        f"{table.warehouse_schema}.{table.current_table}",
    )
    source = config.source(table.source)
    try:
        with connect(source) as conn:
            columns, source_rows = read_table(conn, source, table.source_schema, table.source_table)
    except Exception as exc:  # report per table; one unreachable source must not hide the others
        report.error = f"cannot read source table: {one_line(exc)}"
        return report
    wh_types = warehouse_types(session, table.warehouse_schema, table.current_table)
    report.missing_columns = [c for c in columns if c not in wh_types]
    present = [c for c in columns if c in wh_types]
    query = exp.select(*(sqltree.col(c) for c in present)).from_(
        sqltree.table(table.current_table, table.warehouse_schema)
    )
    wh_rows = session.query(query)
    src_positions = [columns.index(c) for c in present]
    diff = diff_rows(
        present,
        [tuple(row[i] for i in src_positions) for row in source_rows],
        wh_rows,
        table.key_columns,
        wh_types,
    )
    report.source_rows, report.warehouse_rows = len(source_rows), len(wh_rows)
    report.counts = diff.counts
    report.missing, report.unexpected, report.different = (
        diff.missing,
        diff.unexpected,
        diff.different,
    )
    target = shapes.MergeTarget(table.names, (), tuple(table.key_columns))
    report.current_violations = int(session.query(checks.current_violations(target))[0][0])
    report.link_violations = int(session.query(checks.link_violations(target))[0][0])
    return report


def _unreplicated(
    config: HubConfig, known: set[tuple[str, str, str]], skip: set[str] | None = None
) -> list[TableReport]:
    """A failing entry for each captured, non-empty source table that has no warehouse table.

    An empty source table produces no change event, so it has no warehouse table yet; that is exact.
    """
    reports = []
    for source in config.sources:
        if skip and source.name in skip:
            continue
        try:
            with connect(source) as conn:
                missing = [
                    (namespace, table)
                    for namespace, table in list_tables(conn, source)
                    if (source.name, namespace, table) not in known
                    and not table_is_empty(conn, source, namespace, table)
                ]
        except Exception as exc:  # reported, not raised: the other sources are still checked
            error = f"cannot list tables: {one_line(exc)}"
            reports.append(TableReport(source.name, "*", "-", error=error))
            continue
        for namespace, table in missing:
            report = TableReport(source.name, f"{namespace}.{table}", "-")
            report.error = "captured by the source but not replicated to the warehouse"
            reports.append(report)
    return reports


def one_line(exc: BaseException) -> str:
    """A driver error as one line (psycopg's connection errors span several)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def unreachable_sources(config: HubConfig) -> dict[str, str]:
    """Each configured source that cannot be connected to, with why (one line)."""
    down = {}
    for source in config.sources:
        try:
            with connect(source):
                pass
        except Exception as exc:
            where = f"{source.host}:{source.port}/{source.database}"
            down[source.name] = (
                f"cannot connect to source {source.name!r} at {where}: {one_line(exc)}"
            )
    return down


def verify_all(
    session: WarehouseSession, config: HubConfig, down: dict[str, str] | None = None
) -> dict[str, Any]:
    """Verify every replicated table; the dict is what `verify --json` prints.

    A source that cannot be reached gives one failing entry (table `*`) instead of one error per
    table, and its tables are not counted: a table that was not compared has no counts to show.

    Raises:
        ConfigError: no source is configured, so there is nothing to compare with.
    """
    if not config.sources:
        raise ConfigError(
            "no sources configured: verify compares the warehouse with its sources; add a "
            "`sources:` entry to the config",
            path=str(config.config_path) if config.config_path else None,
        )
    tables = replicated_tables(session)
    if down is None:
        down = unreachable_sources(config)
    reports = [TableReport(name, "*", "-", error=why) for name, why in down.items()]
    reachable = {s.name for s in config.sources} - set(down)
    reports.extend(verify_table(session, config, t) for t in tables if t.source in reachable)
    reports.extend(
        _unreplicated(
            config,
            {(t.source, t.source_schema, t.source_table) for t in tables},
            skip=set(down),
        )
    )
    return {
        "ok": bool(reports) and all(r.ok for r in reports),
        "tables": [r.to_json() for r in reports],
        "checked_at": dt.datetime.now(dt.UTC).isoformat(),
    }
