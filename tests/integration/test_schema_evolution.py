"""Live DDL on both sources while replicating: added columns and widened types reach the warehouse,
and the warehouse still equals the source value for value (`verify` is the oracle)."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest

from connectors.service import apply_connectors
from connectors.warehouses import open_session
from dbschemas.demo_sources import source_connection
from dbschemas.samples.mariadbserver import run_script
from ops.schema_admin import accept_schema
from tests.integration.conftest import Stack
from tests.integration.helpers import (
    failures,
    replicate_until_verified,
    run_until_idle,
    verify,
    with_warehouse,
)

pytestmark = pytest.mark.integration

BIG = 2**40  # needs BIGINT; the columns below start narrower


def test_added_columns_and_widened_types_replicate(stack: Stack) -> None:
    assert replicate_until_verified(stack.config)["ok"]
    sources = {s.name: s for s in stack.config.sources}

    pg = source_connection(stack.layout, sources["shop"])
    try:
        cur = pg.cursor()
        cur.execute("ALTER TABLE public.products ALTER COLUMN reorder_level TYPE integer")
        cur.execute("ALTER TABLE public.customers ADD COLUMN nickname text")
        cur.execute(
            "UPDATE public.products SET reorder_level = 100000 "
            "WHERE product_id = (SELECT min(product_id) FROM public.products)"
        )
        cur.execute(
            "UPDATE public.customers SET nickname = 'Zoë 🦊' "
            "WHERE customer_id = (SELECT min(customer_id) FROM public.customers)"
        )
        pg.commit()
    finally:
        pg.close()

    maria = source_connection(stack.layout, sources["inventory"])
    try:
        cur = maria.cursor()
        cur.execute("ALTER TABLE stock_levels MODIFY quantity_on_hand BIGINT NOT NULL DEFAULT 0")
        cur.execute(
            "UPDATE stock_levels SET quantity_on_hand = %s ORDER BY warehouse_id, sku LIMIT 1",
            (BIG,),
        )
        maria.commit()
    finally:
        maria.close()

    report = replicate_until_verified(stack.config)
    assert report["ok"], failures(report)

    conn = duckdb.connect(str(stack.config.warehouse.path), read_only=True)
    try:
        types = dict(
            conn.execute(
                "SELECT table_schema || '.' || table_name || '.' || column_name, data_type "
                "FROM information_schema.columns WHERE column_name IN "
                "('reorder_level', 'nickname', 'quantity_on_hand')"
            ).fetchall()
        )
        assert types["shop.products.reorder_level"] == "INTEGER"
        assert types["shop.products_history.reorder_level"] == "INTEGER"
        assert types["shop.customers_history.nickname"] == "VARCHAR"
        assert types["inventory.stock_levels_history.quantity_on_hand"] == "BIGINT"
        assert conn.execute(
            "SELECT count(*) FROM inventory.stock_levels WHERE quantity_on_hand = ?", [BIG]
        ).fetchone() == (1,)
        # Versions older than the new column hold NULL in it; the history keeps them.
        assert (
            conn.execute(
                "SELECT count(*) FROM shop.customers_history WHERE nickname IS NULL"
            ).fetchone()[0]
            > 0
        )
        logged = conn.execute(
            "SELECT source_table, count(*) FROM _cdchub.schema_log "
            "WHERE source_table IN ('products', 'customers', 'stock_levels') GROUP BY 1"
        ).fetchall()
        assert dict(logged) == {"products": 2, "customers": 2, "stock_levels": 2}
    finally:
        conn.close()


def test_an_incompatible_change_stops_only_its_table_until_accepted(
    stack: Stack, tmp_path: Path
) -> None:
    # A source of its own, so other tests' replays never meet this deliberately incompatible DDL.
    run_script(
        stack.layout,
        "CREATE DATABASE gadgets_db; USE gadgets_db; "
        "CREATE TABLE gadgets (id INT PRIMARY KEY, label VARCHAR(20) NOT NULL); "
        "CREATE TABLE widgets (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL); "
        "INSERT INTO gadgets VALUES (1, '7'), (2, '8'); INSERT INTO widgets VALUES (1, 'a');",
    )
    base = {s.name: s for s in stack.config.sources}["inventory"]
    source = base.model_copy(
        update={"name": "gadgets", "database": "gadgets_db", "server_id": 184177}
    )
    config = with_warehouse(stack.config, tmp_path / "gadgets-warehouse.duckdb", "it-gadgets")
    config = config.model_copy(update={"sources": [source]})
    apply_connectors(config, progress=lambda _m: None)
    assert replicate_until_verified(config)["ok"]

    run_script(
        stack.layout,
        "USE gadgets_db; ALTER TABLE gadgets MODIFY label INT NOT NULL; "
        "UPDATE gadgets SET label = label + 100 WHERE id = 1; "
        "UPDATE widgets SET note = 'after the DDL' WHERE id = 1;",
    )
    # Must not raise: only gadgets stops. Debezium may deliver the widgets change a little later.
    deadline = time.monotonic() + 180
    while True:
        run_until_idle(config)
        bad = {t["table"] for t in failures(verify(config))}
        if bad == {"gadgets_db.gadgets"} or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert bad == {"gadgets_db.gadgets"}  # widgets kept flowing
    warehouse = str(config.warehouse.path)

    def held() -> tuple[int, int]:
        conn = duckdb.connect(warehouse, read_only=True)
        try:
            row = conn.execute(
                "SELECT count(*), count(DISTINCT record_offset) FROM _cdchub.parked_records "
                "WHERE reason = 'held'"
            ).fetchone()
            assert conn.execute("SELECT label FROM gadgets.gadgets WHERE id = 1").fetchone() in (
                ("7",),
                (107,),
            )
            return row
        finally:
            conn.close()

    assert held()[0] >= 1
    run_until_idle(config)  # a restarted run retries, holds them again, stores them once
    count, distinct = held()
    assert count == distinct >= 1

    # The operator's fix: a warehouse type that holds the old and the new values, then accept.
    conn = duckdb.connect(warehouse)
    try:
        for name in ("gadgets", "gadgets_history"):
            conn.execute(f"ALTER TABLE gadgets.{name} ALTER label TYPE INTEGER")
    finally:
        conn.close()
    session = open_session(config)
    try:
        accept_schema(session, "gadgets.gadgets", config.kafka.group_id)
    finally:
        session.close()
    report = replicate_until_verified(config)
    assert report["ok"], failures(report)
    assert held() == (0, 0)
