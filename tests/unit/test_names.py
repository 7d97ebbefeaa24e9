"""Two source tables never share a warehouse table, and every name fits the warehouse (issue 10).

The engine runs on real DuckDB files and on fakesnow; tests/integration/test_names.py runs the same
cases through Debezium into DuckDB and PostgreSQL warehouses.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlglot import exp

from connectors.debezium import connector_config
from connectors.warehouses import dialect_for
from core.config import HubConfig, SourceConfig
from core.model import ChangeEvent, Column, ColumnType, Op, TableId, TableSchema
from merge import ddl, shapes, sqltree
from merge.ledger import Checkpoint
from merge.naming import (
    HISTORY_SUFFIX,
    SUFFIX_RESERVE,
    NameBook,
    fit_identifier,
    name_notes,
    table_names,
)
from merge.scd2 import Scd2Engine
from merge.schema_sync import TableInfo
from merge.session import WarehouseSession
from ops.catalog import replicated_tables
from tests.unit.warehouses import duckdb_session, snowflake_session

LONG = "a_table_name_that_is_exactly_long_enough_to_hit_the_limit"  # 57 characters
CLASHING = [
    TableId("src", "s", "t"),
    TableId("src", "public", "s__t"),
    TableId("src", "public", "Orders"),
    TableId("src", "public", "orders"),
    TableId("src", "public", "x"),
    TableId("src", "public", "x_history"),
    TableId("src", "public", "y"),
    TableId("src", "public", "y_versions"),
    TableId("src", "public", LONG),
]
SCHEMA = TableSchema(
    (Column("id", ColumnType("int32"), False), Column("v", ColumnType("string"))), ("id",)
)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _events(table: TableId, step: int) -> list[ChangeEvent]:
    row = {"id": 1, "v": f"{table.namespace}.{table.table}"}
    return [ChangeEvent(table, Op.CREATE, (1,), None, row, f"{step:08d}", T0, f"t{step}", SCHEMA)]


def _current_values(session: WarehouseSession) -> dict[str, str]:
    out = {}
    for t in replicated_tables(session):
        rows = session.query(
            exp.select(sqltree.col("v")).from_(sqltree.table(t.current_table, t.warehouse_schema))
        )
        assert len(rows) == 1, (t, rows)
        out[f"{t.source_schema}.{t.source_table}"] = rows[0][0]
    return out


def _replicate_clashing(session: WarehouseSession, notes: list[str]) -> None:
    engine = Scd2Engine(session, "g", notify=notes.append)
    infos = {t: TableInfo("postgres", "db", "public") for t in CLASHING}
    # One table per batch, in turn: each new one meets the names of those before it.
    for step, table in enumerate(CLASHING):
        engine.apply({table: _events(table, step)}, infos, [Checkpoint("src", 0, step + 1)])


@pytest.mark.parametrize(
    "open_session", [duckdb_session, snowflake_session], ids=["duckdb", "fakesnow"]
)
def test_clashing_source_tables_land_in_distinct_warehouse_tables(
    tmp_path: Path, open_session: object
) -> None:
    notes: list[str] = []
    with open_session(tmp_path / "w") as session:  # type: ignore[operator]
        _replicate_clashing(session, notes)
        tables = replicated_tables(session)
        assert len(tables) == len(CLASHING)
        folded = {(t.current_table.lower(), t.history_table.lower()) for t in tables}
        every = [n for pair in folded for n in pair]
        assert len(set(every)) == 2 * len(CLASHING), every  # no two share a table
        # Each warehouse table holds its own source table's row, not another's.
        assert _current_values(session) == {
            f"{t.namespace}.{t.table}": f"{t.namespace}.{t.table}" for t in CLASHING
        }
    # The second of each clashing pair was told why it got another name, naming both tables.
    assert any("src.s.t" in n and "src.public.s__t" in n for n in notes), notes
    assert any("src.public.orders" in n and "src.public.Orders" in n for n in notes), notes
    assert any("src.public.x_history" in n for n in notes), notes
    assert any("src.public.y_versions" in n for n in notes), (
        notes
    )  # `cdchub views` needs y_versions


def test_recorded_names_are_stable_across_restarts(tmp_path: Path) -> None:
    with duckdb_session(tmp_path / "w") as session:
        _replicate_clashing(session, [])
        before = {(t.source_schema, t.source_table): t.names for t in replicated_tables(session)}
    with duckdb_session(tmp_path / "w") as session:
        # A restarted engine that sees the tables in the opposite order keeps the recorded names.
        engine = Scd2Engine(session, "g")
        infos = {t: TableInfo("postgres", "db", "public") for t in CLASHING}
        for step, table in enumerate(reversed(CLASHING), start=100):
            update = [
                ChangeEvent(
                    table,
                    Op.UPDATE,
                    (1,),
                    None,
                    {"id": 1, "v": f"{table}"},
                    f"{step:08d}",
                    T0,
                    f"t{step}",
                    SCHEMA,
                )
            ]
            engine.apply({table: update}, infos, [Checkpoint("src", 0, step)])
        after = {(t.source_schema, t.source_table): t.names for t in replicated_tables(session)}
        assert after == before
        assert _current_values(session) == {f"{t.namespace}.{t.table}": str(t) for t in CLASHING}


def test_long_names_get_a_stable_short_form_within_the_limit() -> None:
    book = NameBook(str, 63)
    names, why = book.resolve(TableId("src", "public", LONG + "x"), "public")
    assert len(names.history.encode()) <= 63 and names.history == names.current + HISTORY_SUFFIX
    assert why is not None and "63-byte" in why
    again, _ = NameBook(str, 63).resolve(TableId("src", "public", LONG + "x"), "public")
    assert again == names
    other, _ = book.resolve(TableId("src", "public", LONG + "y"), "public")
    assert other.current != names.current
    # Multi-byte characters count as bytes and are never cut in half.
    short = fit_identifier("é" * 40, 63, reserve=SUFFIX_RESERVE)
    assert len((short + HISTORY_SUFFIX).encode()) <= 63
    short.encode().decode()
    # DuckDB has no limit; PostgreSQL's is 63 bytes, Snowflake's 255.
    assert dialect_for("duckdb").MAX_IDENTIFIER_LENGTH is None
    assert dialect_for("postgres").MAX_IDENTIFIER_LENGTH == 63
    assert dialect_for("snowflake").MAX_IDENTIFIER_LENGTH == 255
    long_on_duck, _ = NameBook(str.lower, None).resolve(
        TableId("src", "public", LONG * 3), "public"
    )
    assert long_on_duck == table_names(TableId("src", "public", LONG * 3), "public")


def test_long_history_index_name_fits_postgres() -> None:
    names, _ = NameBook(str, 63).resolve(TableId("src", "public", LONG), "public")
    target = shapes.MergeTarget(names, (("id", ColumnType("int32")),), ("id",))
    index = ddl.history_index(target, 63)
    assert len(index.this.this.name.encode()) <= 63


def test_preflight_notes_name_both_clashing_tables_per_warehouse() -> None:
    duck = dialect_for("duckdb")
    notes = name_notes(CLASHING, "public", duck.fold, duck.MAX_IDENTIFIER_LENGTH)
    text = "\n".join(notes)
    assert "src.public.s__t and src.s.t" in text
    assert "src.public.Orders and src.public.orders" in text
    assert "src.public.x and src.public.x_history" in text
    assert "src.public.y and src.public.y_versions" in text
    assert LONG not in text  # DuckDB takes long names as they are
    pg = dialect_for("postgres")
    notes = name_notes(CLASHING, "public", pg.fold, pg.MAX_IDENTIFIER_LENGTH)
    text = "\n".join(notes)
    assert "Orders" not in text  # PostgreSQL keeps quoted names apart by case
    assert LONG in text and "63-byte" in text


def _source(kind: str) -> SourceConfig:
    return SourceConfig(name="m", kind=kind, port=3306, database="d", user="u", password="p")  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "mode"), [("mysql", "disabled"), ("mariadb", "disable")])
def test_ssl_mode_is_spelt_as_each_connector_wants(kind: str, mode: str) -> None:
    hub = HubConfig.model_validate({"sources": [], "warehouse": {"kind": "duckdb", "path": "w"}})
    assert connector_config(_source(kind), hub)["database.ssl.mode"] == mode
