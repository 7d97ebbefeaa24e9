"""Live DDL on both sources while replicating: added columns and widened types reach the warehouse,
and the warehouse still equals the source value for value (`verify` is the oracle)."""

from __future__ import annotations

import duckdb
import pytest

from dbschemas.loader import source_connection
from tests.integration.conftest import Stack
from tests.integration.helpers import failures, replicate_until_verified

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
