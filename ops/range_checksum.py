"""Per-primary-key-range checksums: where in a table the warehouse and the source disagree.

`cdchub verify --ranges N` splits each table's keys (source and warehouse together, in key order)
into N ranges of equal size and compares, per range, the row count and an order-independent
checksum of the normalised rows (the same normalisation as `cdchub verify`, docs/verify.md). A
mismatch is then named by its key range, which is what a re-sync of part of a table needs.

The checksum of a range is the sum, modulo 2**64, of a SHA-256 prefix of each row's canonical text,
so it does not depend on the order rows are read in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from connectors.sources import connect, read_table
from core.config import HubConfig
from merge import sqltree
from merge.session import WarehouseSession
from ops.catalog import ReplicatedTable, replicated_tables, warehouse_types
from ops.verify import normalize

Key = tuple[str, ...]
MASK = (1 << 64) - 1


@dataclass(frozen=True)
class RangeSum:
    """One key range: its bounds (inclusive) and both sides' count and checksum."""

    first: Key
    last: Key
    source_rows: int
    source_sum: int
    warehouse_rows: int
    warehouse_sum: int

    @property
    def ok(self) -> bool:
        return (self.source_rows, self.source_sum) == (self.warehouse_rows, self.warehouse_sum)


def row_hash(values: Sequence[Any]) -> int:
    """A 64-bit hash of a normalised row's canonical JSON text."""
    text = json.dumps(list(values), default=str, sort_keys=True, ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _sort_key(key: Key) -> tuple[tuple[int, Any], ...]:
    # Numbers in numeric order, everything else as text: keys of one table share one type.
    out: list[tuple[int, Any]] = []
    for part in key:
        try:
            out.append((0, float(part)))
        except ValueError:
            out.append((1, part))
    return tuple(out)


def range_sums(
    source: Mapping[Key, Sequence[Any]], warehouse: Mapping[Key, Sequence[Any]], ranges: int
) -> list[RangeSum]:
    """Split the union of keys into `ranges` equal ranges and checksum both sides per range."""
    keys = sorted(source.keys() | warehouse.keys(), key=_sort_key)
    if not keys:
        return []
    size = -(-len(keys) // max(1, ranges))
    out = []
    for start in range(0, len(keys), size):
        chunk = keys[start : start + size]
        src = [row_hash(source[k]) for k in chunk if k in source]
        wh = [row_hash(warehouse[k]) for k in chunk if k in warehouse]
        out.append(
            RangeSum(chunk[0], chunk[-1], len(src), sum(src) & MASK, len(wh), sum(wh) & MASK)
        )
    return out


def _keyed(
    rows: list[tuple[Any, ...]], columns: list[str], types: dict[str, str], key: list[str]
) -> dict[Key, list[Any]]:
    positions = [columns.index(k) for k in key]
    out = {}
    for row in rows:
        values = [normalize(v, types.get(c, "")) for c, v in zip(columns, row, strict=True)]
        out[tuple(str(values[i]) for i in positions)] = values
    return out


def table_ranges(
    session: WarehouseSession, config: HubConfig, table: ReplicatedTable, ranges: int
) -> dict[str, Any]:
    """The range report of one table (`verify --ranges`)."""
    entry: dict[str, Any] = {
        "source": table.source,
        "table": f"{table.source_schema}.{table.source_table}",
        "ranges": 0,
        "mismatched": [],
        "error": None,
    }
    source = config.source(table.source)
    try:
        with connect(source) as conn:
            columns, src_rows = read_table(conn, source, table.source_schema, table.source_table)
    except Exception as exc:  # one unreachable source must not hide the others
        entry["error"] = f"cannot read source table: {exc}"
        return entry
    types = warehouse_types(session, table.warehouse_schema, table.current_table)
    present = [c for c in columns if c in types]
    query = exp.select(*(sqltree.col(c) for c in present)).from_(
        sqltree.table(table.current_table, table.warehouse_schema)
    )
    src_present = [[row[columns.index(c)] for c in present] for row in src_rows]
    src = _keyed([tuple(r) for r in src_present], present, types, table.key_columns)
    wh = _keyed(session.query(query), present, types, table.key_columns)
    sums = range_sums(src, wh, ranges)
    entry["ranges"] = len(sums)
    entry["mismatched"] = [
        {
            "from": list(r.first),
            "to": list(r.last),
            "source_rows": r.source_rows,
            "warehouse_rows": r.warehouse_rows,
        }
        for r in sums
        if not r.ok
    ]
    return entry


def all_ranges(session: WarehouseSession, config: HubConfig, ranges: int) -> list[dict[str, Any]]:
    """Range reports of every replicated table of a configured source."""
    configured = {s.name for s in config.sources}
    return [
        table_ranges(session, config, t, ranges)
        for t in replicated_tables(session)
        if t.source in configured
    ]
