"""Schema evolution verdicts, judged against the DuckDB type map."""

from __future__ import annotations

import pytest

from connectors.warehouses.duckdb.dialect import DuckDBDialect
from core.model import ColumnType as T
from merge.evolution import Change, evolve

D = DuckDBDialect()


@pytest.mark.parametrize(
    ("old", "new", "change", "result"),
    [
        (T("int32"), T("int32", logical="x"), Change.SAME, T("int32")),
        (T("int32"), T("int64"), Change.WIDEN, T("int64")),
        (T("int64"), T("int16"), Change.KEEP, T("int64")),
        (T("float32"), T("float64"), Change.WIDEN, T("float64")),
        (
            T("decimal", precision=10, scale=2),
            T("decimal", precision=14, scale=2),
            Change.WIDEN,
            T("decimal", precision=14, scale=2),
        ),
        # More scale and fewer integer digits: the warehouse takes the union of both.
        (
            T("decimal", precision=10, scale=2),
            T("decimal", precision=10, scale=4),
            Change.WIDEN,
            T("decimal", precision=12, scale=4),
        ),
        (
            T("decimal", precision=12, scale=2),
            T("decimal", precision=8, scale=2),
            Change.KEEP,
            T("decimal", precision=12, scale=2),
        ),
        (
            T("int32"),
            T("decimal", precision=12, scale=2),
            Change.WIDEN,
            T("decimal", precision=12, scale=2),
        ),
        # Beyond DuckDB's 38 digits the column is the text fallback: it holds any number exactly.
        (
            T("decimal", precision=50, scale=0),
            T("decimal", precision=60, scale=5),
            Change.SAME,
            T("decimal", precision=50, scale=0),
        ),
        (
            T("decimal", precision=50, scale=0),
            T("decimal", precision=10, scale=2),
            Change.KEEP,
            T("decimal", precision=50, scale=0),
        ),
        # The connector switched decimal.handling.mode from precise to string: exact text holds all.
        (
            T("decimal", precision=12, scale=2),
            T("numeric"),
            Change.WIDEN,
            T("numeric"),
        ),
        (T("numeric"), T("decimal", precision=12, scale=2), Change.KEEP, T("numeric")),
        (T("int64"), T("string"), Change.INCOMPATIBLE, T("int64")),
        (T("string"), T("int32"), Change.INCOMPATIBLE, T("string")),
        (T("int64"), T("float64"), Change.INCOMPATIBLE, T("int64")),
    ],
)
def test_evolution_verdicts(old: T, new: T, change: Change, result: T) -> None:
    verdict = evolve(old, new, D)
    assert verdict.change is change
    assert verdict.column_type == result


def test_engine_widens_a_column_in_place_and_refuses_an_incompatible_change(tmp_path) -> None:
    import datetime as dt

    from connectors.warehouses.duckdb.client import DuckDBSession
    from core.errors import MergeError
    from core.model import ChangeEvent, Column, Op, TableId, TableSchema
    from merge.ledger import Checkpoint
    from merge.scd2 import Scd2Engine
    from merge.schema_sync import TableInfo

    table = TableId("src", "public", "t")
    info = {table: TableInfo("postgres", "db", "public")}
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def schema(kind: str) -> TableSchema:
        return TableSchema((Column("id", T("int32")), Column("n", T(kind))), ("id",))

    def change(pos: int, n: object, kind: str) -> ChangeEvent:
        row = {"id": 1, "n": n}
        return ChangeEvent(table, Op.UPDATE, (1,), None, row, f"{pos:04d}", now, "t", schema(kind))

    session = DuckDBSession(tmp_path / "w.duckdb")
    try:
        engine = Scd2Engine(session, "g")
        engine.apply({table: [change(1, 7, "int32")]}, info, [Checkpoint("x", 0, 1)])
        big = 2**40  # does not fit the INTEGER the column started as
        # A restarted engine (a new process) meets the wider type first: it still widens, because
        # the warehouse recorded the type each column was made for.
        Scd2Engine(session, "g").apply(
            {table: [change(2, big, "int64")]}, info, [Checkpoint("x", 0, 2)]
        )
        assert session.query('SELECT n FROM "src"."t_history" ORDER BY 1') == [(7,), (big,)]
        assert session.query('SELECT n FROM "src"."t"') == [(big,)]
        types = session.query(
            "SELECT data_type FROM information_schema.columns WHERE column_name = 'n'"
        )
        assert {t for (t,) in types} == {"BIGINT"}
        # A restarted engine that sees the narrower old schema again keeps the wider column.
        Scd2Engine(session, "g").apply({table: [change(3, 1, "int32")]}, info, [])
        engine = Scd2Engine(session, "g")
        with pytest.raises(MergeError, match="'n' changed type from int64 to string"):
            engine.apply({table: [change(4, "x", "string")]}, info, [Checkpoint("x", 0, 4)])
        assert session.query('SELECT n FROM "src"."t"') == [(1,)]
    finally:
        session.close()
