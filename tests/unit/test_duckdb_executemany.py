"""DuckDB's executemany: a one-row INSERT runs as multi-row statements, every row kept as given."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlglot import exp

from connectors.warehouses.duckdb.client import DuckDBSession
from merge.sqltree import insert_rows


def test_a_one_row_insert_keeps_every_row_across_statements(warehouse: DuckDBSession) -> None:
    warehouse.conn.execute("CREATE TABLE t (a INTEGER, b TEXT, c DECIMAL(10, 2), d TIMESTAMPTZ)")
    insert = insert_rows(exp.to_table("t"), ["a", "b", "c", "d"])
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    rows = [(i, f"v'{i}" if i % 7 else None, Decimal(i) / 4, at) for i in range(2 * 500 + 3)]
    warehouse.executemany(insert, rows)
    warehouse.executemany(insert, [])
    warehouse.executemany(insert, [(-1, "one", None, None)])
    got = warehouse.conn.execute("SELECT a, b, c, d FROM t ORDER BY a").fetchall()
    assert got == sorted([(-1, "one", None, None), *rows])


def test_other_statements_run_once_per_row(warehouse: DuckDBSession) -> None:
    warehouse.conn.execute("CREATE TABLE t (a INTEGER)")
    warehouse.conn.execute("INSERT INTO t VALUES (1), (2), (3)")
    delete = exp.delete("t").where(exp.column("a").eq(exp.Placeholder()))
    warehouse.executemany(delete, [(1,), (3,)])
    assert warehouse.conn.execute("SELECT a FROM t").fetchall() == [(2,)]
