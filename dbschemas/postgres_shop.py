"""The shop on PostgreSQL: create the database and tables, seed them once, prepare the source for CDC.

Every call (re)grants SELECT to the CDC user, creates the heartbeat and signaling tables and creates or
updates the publication (`connectors.postgres_admin`); seed rows are written only into empty tables.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from connectors import postgres_admin, signals
from connectors.heartbeat import heartbeat_table
from core.config import SourceConfig
from core.errors import ConfigError, StackError
from dbschemas import Progress
from dbschemas import fakedata as fd
from dbschemas.demo_sources import pg_connect, seed_if_empty
from infrastructure.stack.layout import StackLayout

SCHEMA_FILE = Path(__file__).resolve().parent / "shop" / "postgres.sql"
# Tables in dependency order (parents first), so seeding and existence checks share one list.
SHOP_TABLES = ("customers", "products", "orders", "order_items", "payments")
PG_SCHEMA = "public"


def load_shop(layout: StackLayout, source: SourceConfig, progress: Progress) -> None:
    admin = layout.pg_admin
    where = f"{source.name} (postgres {admin.host}:{admin.port}/{source.database})"
    try:
        with pg_connect(admin, "postgres", autocommit=True) as conn:
            if postgres_admin.create_database(conn, source.database):
                progress(f"demo: {where}: created database")
        with pg_connect(admin, source.database) as conn:
            missing = _pg_missing_tables(conn)
            if missing:
                conn.execute(SCHEMA_FILE.read_text())
                conn.commit()
                progress(f"demo: {where}: created tables {', '.join(missing)}")
            seed_if_empty(where, _pg_counts(conn), lambda: _seed_shop(conn), conn.commit, progress)
            _pg_grant(conn, source.database, layout.pg_cdc.user)
            postgres_admin.create_heartbeat_table(conn, source, layout.pg_cdc.user)
            postgres_admin.create_signal_table(conn, source, layout.pg_cdc.user)
            action = _pg_publication(conn, source)
            conn.commit()
            progress(f"demo: {where}: granted SELECT to {layout.pg_cdc.user}; {action}")
    except psycopg.Error as exc:
        raise StackError(
            f"loading the demo schema failed: {exc}", source=source.name, database=source.database
        ) from exc


def _pg_missing_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = %s AND table_name = ANY(%s)",
        (PG_SCHEMA, list(SHOP_TABLES)),
    ).fetchall()
    present = {r[0] for r in rows}
    return [t for t in SHOP_TABLES if t not in present]


def _pg_counts(conn: psycopg.Connection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in SHOP_TABLES:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(PG_SCHEMA, table))
        row = conn.execute(query).fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


def _pg_grant(conn: psycopg.Connection, dbname: str, cdc_user: str) -> None:
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (cdc_user,)).fetchone():
        raise StackError(
            "the CDC user does not exist; run `cdchub stack up` first", user=cdc_user, db=dbname
        )
    postgres_admin.grant_read(conn, dbname, cdc_user, [PG_SCHEMA])


def _pg_publication_tables(conn: psycopg.Connection, source: SourceConfig) -> list[tuple[str, str]]:
    """The (schema, table) pairs to publish: the source's list, else every user table.

    The heartbeat table is always published: its changes must reach Debezium to advance the slot.
    """
    existing = [(s, t) for s, t, _ in postgres_admin.publishable_tables(conn)]
    beat = heartbeat_table(source)
    signal = signals.signal_table(source)
    if source.tables is None:
        return existing
    wanted = [tuple(t.split(".", 1)) for t in source.tables]
    missing = [".".join(t) for t in wanted if t not in existing]
    if missing:
        raise ConfigError(
            f"tables to publish do not exist: {', '.join(missing)}",
            source=source.name,
            database=source.database,
        )
    extra = [t for t in (beat, signal) if t and t not in wanted and t in existing]
    return [(s, t) for s, t in wanted] + extra


def _pg_publication(conn: psycopg.Connection, source: SourceConfig) -> str:
    """Create the source's publication or reset its table list; returns what was done."""
    tables = _pg_publication_tables(conn, source)
    if not tables:
        raise ConfigError("no tables to publish", source=source.name, database=source.database)
    return postgres_admin.publish(conn, source.publication, tables)


def _seed_shop(conn: psycopg.Connection) -> dict[str, int]:
    """Write the deterministic initial shop: 200 customers, 100 products, 300 orders."""
    rng = random.Random("cdchub-demo-shop")
    customers: list[tuple[Any, ...]] = []
    for cid in range(1, 201):
        name = fd.person_name(rng)
        created = fd.EPOCH + fd.micro_jitter(rng, 180 * 86400)
        customers.append(
            (
                cid,
                fd.new_uuid(rng),
                fd.email_for(name, rng),
                name,
                fd.phone(rng),
                fd.birth_date(rng),
                rng.choice([0, 0, 10, 250, 1200, 2_000_000_000]),  # includes a near-int4 max
                rng.random() > 0.05,
                fd.tags(rng, fd.SEGMENTS, 2),
                Jsonb(fd.preferences(rng)),
                created,
                created + fd.micro_jitter(rng, 30 * 86400),
            )
        )
    products: list[tuple[Any, ...]] = []
    prices: dict[int, Decimal] = {}
    for pid in range(1, 101):
        created = fd.EPOCH + fd.micro_jitter(rng, 60 * 86400)
        price = Decimal("9999999999.99") if pid == 100 else fd.money(rng, 0, 800)
        prices[pid] = price
        products.append(
            (
                pid,
                fd.sku_for(pid),
                fd.product_name(rng),
                rng.choice([None, "", "Hand-made in Porto 🇵🇹", "Dishwasher safe. 食洗機対応。"]),
                price,
                rng.choice([None, round(rng.uniform(0.01, 40.0), 3), 1e-9, 12345.678901234]),
                fd.tags(rng),
                Jsonb(fd.product_attributes(rng)) if rng.random() < 0.9 else None,
                rng.choice([0, 5, 10, 32767]),
                rng.random() < 0.05,
                created,
                created + fd.micro_jitter(rng, 60 * 86400),
            )
        )
    # Orders are placed in id order, so placed_at grows with order_id like in a real shop.
    placed_times = sorted(
        fd.EPOCH + timedelta(days=180) + fd.micro_jitter(rng, 180 * 86400) for _ in range(300)
    )
    statuses = ["pending", "paid", "shipped", "delivered", "cancelled"]
    orders: list[tuple[Any, ...]] = []
    items: list[tuple[Any, ...]] = []
    payments: list[tuple[Any, ...]] = []
    for oid, placed in enumerate(placed_times, start=1):
        status = rng.choices(statuses, weights=[15, 25, 25, 30, 5])[0]
        lines = _order_lines(rng, oid, prices, list(range(1, 100)))
        items.extend(lines)
        total = _order_total(lines)
        shipped = placed + fd.micro_jitter(rng, 3 * 86400) if status in statuses[2:4] else None
        orders.append(
            (
                oid,
                fd.new_uuid(rng),
                rng.randint(1, 200),
                status,
                placed.date(),
                placed,
                shipped,
                total,
                rng.choice(["EUR", "EUR", "USD", "GBP"]),
                Jsonb(fd.address(rng)),
                fd.note(rng),
                (shipped or placed) + fd.micro_jitter(rng, 3600),
            )
        )
        if status != "pending":
            if rng.random() < 0.1:  # a declined card before the successful payment
                payments.append(_payment(rng, oid, total, placed, succeeded=False))
            payments.append(_payment(rng, oid, total, placed, succeeded=True))
    with conn.cursor() as cur:
        _insert_pg(cur, "customers", CUSTOMER_COLS, customers)
        _insert_pg(cur, "products", PRODUCT_COLS, products)
        _insert_pg(cur, "orders", ORDER_COLS, orders)
        _insert_pg(cur, "order_items", ORDER_ITEM_COLS, items)
        _insert_pg(
            cur, "payments", PAYMENT_COLS, [(i, *p) for i, p in enumerate(payments, start=1)]
        )
        # Seed rows carry explicit ids; move the identity sequences past them.
        for table, key in (
            ("customers", "customer_id"),
            ("products", "product_id"),
            ("orders", "order_id"),
            ("payments", "payment_id"),
        ):
            cur.execute(
                sql.SQL("SELECT setval(pg_get_serial_sequence(%s, %s), max({})) FROM {}").format(
                    sql.Identifier(key), sql.Identifier(PG_SCHEMA, table)
                ),
                (f"{PG_SCHEMA}.{table}", key),
            )
    return {
        "customers": len(customers),
        "products": len(products),
        "orders": len(orders),
        "order_items": len(items),
        "payments": len(payments),
    }


CUSTOMER_COLS = (
    "customer_id", "external_id", "email", "full_name", "phone", "birth_date", "loyalty_points",
    "is_active", "segments", "preferences", "created_at", "updated_at",
)  # fmt: skip
PRODUCT_COLS = (
    "product_id", "sku", "name", "description", "price", "weight_kg", "tags", "attributes",
    "reorder_level", "is_discontinued", "created_at", "updated_at",
)  # fmt: skip
ORDER_COLS = (
    "order_id", "order_uuid", "customer_id", "status", "order_date", "placed_at", "shipped_at",
    "total_amount", "currency", "shipping_address", "notes", "updated_at",
)  # fmt: skip
ORDER_ITEM_COLS = ("order_id", "line_no", "product_id", "quantity", "unit_price", "discount_pct")
PAYMENT_COLS = (
    "payment_id", "order_id", "amount", "method", "provider_ref", "succeeded", "details", "paid_at",
)  # fmt: skip


def _order_lines(
    rng: random.Random,
    order_id: int,
    prices: dict[int, Decimal],
    product_ids: Sequence[int],
    count: int | None = None,
) -> list[tuple[Any, ...]]:
    """1-5 order lines (distinct products) as order_items rows."""
    n = count if count is not None else rng.randint(1, 5)
    chosen = rng.sample(list(product_ids), k=min(n, len(product_ids)))
    return [
        (
            order_id,
            line_no,
            pid,
            rng.choice([1, 1, 1, 2, 3, 5, 10, 1000]),
            prices[pid],
            rng.choice([0.0, 0.0, 0.0, 5.0, 10.0, 12.5, 100.0 / 3]),
        )
        for line_no, pid in enumerate(chosen, start=1)
    ]


def _order_total(lines: Sequence[tuple[Any, ...]]) -> Decimal:
    """Sum of quantity * unit_price * (1 - discount), rounded to cents, capped to numeric(12,2)."""
    total = Decimal(0)
    for _oid, _line, _pid, qty, price, discount in lines:
        total += qty * price * (Decimal(1) - Decimal(str(discount)) / 100)
    return min(total.quantize(Decimal("0.01")), Decimal("9999999999.99"))


def _payment(
    rng: random.Random, order_id: int, amount: Decimal, after: datetime, *, succeeded: bool
) -> tuple[Any, ...]:
    """A payments row without its id."""
    method = rng.choice(fd.PAYMENT_METHODS)
    details: dict[str, Any] | None = {"method": method, "attempt": 1 if succeeded else 0}
    if not succeeded:
        details = {"error": rng.choice(["card_declined", "insufficient_funds", "3ds_failed"])}
    elif rng.random() < 0.3:
        details = None
    return (
        order_id,
        amount,
        method,
        fd.new_uuid(rng) if method != "bank_transfer" else None,
        succeeded,
        Jsonb(details) if details is not None else None,
        after + fd.micro_jitter(rng, 86400),
    )


def _insert_pg(
    cur: psycopg.Cursor, table: str, cols: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    stmt = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(PG_SCHEMA, table),
        sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(", ").join(sql.Placeholder() * len(cols)),
    )
    cur.executemany(stmt, rows)
