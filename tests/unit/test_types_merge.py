"""The captured type matrix merged into DuckDB: every value lands in its exact DuckDB type.

TOAST carry-forward and the temporal edges run on every warehouse in tests/behaviour/suite.py.

Uses the real envelopes of tests/fixtures/types (see test_types.py) and a real DuckDB file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb

from connectors.warehouses.duckdb.client import DuckDBSession
from core.model import ChangeEvent, Op, TableId
from merge.scd2 import Scd2Engine
from merge.schema_sync import TableInfo
from tests.unit.test_types import MY, PG


def _merge(path: Path, stream: list[ChangeEvent], kind: str, batch: int) -> None:
    session = DuckDBSession(path)
    engine = Scd2Engine(session, "test")
    keyed = [e for e in stream if e.table.table != "keyless"]  # no key: refused upstream
    infos = {e.table: TableInfo(kind, e.table.namespace, e.table.namespace) for e in keyed}
    try:
        for start in range(0, len(keyed), batch):
            by_table: dict[TableId, list[ChangeEvent]] = {}
            for event in keyed[start : start + batch]:
                by_table.setdefault(event.table, []).append(event)
            engine.apply(by_table, infos, [])
    finally:
        session.close()


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_postgres_matrix_lands_in_exact_duckdb_types(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    _merge(path, PG, "postgres", 100)
    types = dict(
        _rows(
            path,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'typespg' AND table_name = 'matrix'",
        )
    )
    assert types["c_num"] == "VARCHAR" and types["c_money"] == "DECIMAL(19,2)"
    assert types["c_tstz"] == "TIMESTAMP WITH TIME ZONE" and types["c_uuid"] == "UUID"
    assert types["c_int_arr"] == "INTEGER[]" and types["c_bytea"] == "BLOB"
    rows = {
        r[0]: r[1:]
        for r in _rows(
            path,
            "SELECT id, c_num, c_date::VARCHAR, c_ts::VARCHAR, c_tstz::VARCHAR, c_time::VARCHAR, "
            'c_num_50_10 FROM "typespg"."matrix"',
        )
    }
    assert rows[12][0] == "NaN" and rows[13][0] == "Infinity" and rows[14][0] == "-Infinity"
    assert rows[14][1] == "4713-01-01 (BC)" and rows[15][1] == "0044-03-15 (BC)"
    assert rows[14][2] == "infinity" and rows[15][2] == "-infinity"
    assert rows[14][3] == "-infinity" and rows[15][3] == "infinity"
    assert rows[14][4] == "24:00:00"
    assert rows[12][5] == "1234567890123456789012345678901234567890.1234567891"
    assert 1 not in rows and 100 in rows and 2 not in rows  # key change and delete


def test_mariadb_matrix_lands_in_exact_duckdb_types(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    _merge(path, MY, "mariadb", 100)
    history = _rows(
        path,
        'SELECT id, c_time, c_ubigint::VARCHAR, c_dec65, _cdc_op FROM "typesmy"."matrix_history" '
        "WHERE id IN (13, 15) AND _cdc_op = 'c' ORDER BY id",
    )
    assert history[0][1] == dt.timedelta(hours=838, minutes=59, seconds=59)
    assert history[0][2] == "18446744073709551615"
    assert history[0][3] == "99999999999999999999999999999999999.999999999999999999999999999999"
    assert history[1][1] == dt.timedelta(hours=25, microseconds=500000)
    # TRUNCATE closed every open version and emptied the current table.
    assert _rows(path, 'SELECT count(*) FROM "typesmy"."matrix"') == [(0,)]
    ops = _rows(path, 'SELECT DISTINCT _cdc_op FROM "typesmy"."matrix_history" ORDER BY 1')
    assert ("t",) in ops


def test_truncate_first_in_a_restarted_consumer_still_closes_every_key(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    matrix = [e for e in MY if e.table.table == "matrix"]
    truncate = [e for e in matrix if e.op is Op.TRUNCATE]
    assert len(truncate) == 1
    _merge(path, [e for e in matrix if e.op is not Op.TRUNCATE], "mariadb", 100)
    live = _rows(path, 'SELECT count(*) FROM "typesmy"."matrix"')[0][0]
    assert live > 0
    _merge(path, truncate, "mariadb", 100)  # a new engine: the table is known only to the warehouse
    assert _rows(path, 'SELECT count(*) FROM "typesmy"."matrix"') == [(0,)]
    closed = _rows(path, 'SELECT count(*) FROM "typesmy"."matrix_history" WHERE _cdc_op = \'t\'')
    assert closed == [(live,)]
