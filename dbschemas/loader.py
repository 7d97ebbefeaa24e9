"""Create, seed and expose the demo databases on the local stack.

`load_demo_schemas` is idempotent so `cdchub demo` can call it every time: databases and tables are
created only when missing, seed rows are written only into empty tables, and the grants and the
PostgreSQL publication are (re)applied on every call.

Demo sources are recognised by kind and database name: a `postgres` source on database `shop`
gets `shop/postgres.sql`; a `mariadb`/`mysql` source on database `inventory` gets
`inventory/mariadb.sql`.
Both are reached as the stack's admin user, never as the source's (read-only) CDC user.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import psycopg
import pymysql
import pymysql.cursors
from psycopg import sql
from psycopg.types.json import Jsonb

from connectors import postgres_admin, signals
from connectors.heartbeat import heartbeat_table
from core.config import SourceConfig
from core.errors import ConfigError, StackError
from dbschemas import fakedata as fd
from infrastructure.stack.layout import Credentials, StackLayout

SCHEMA_DIR = Path(__file__).resolve().parent
DemoName = Literal["shop", "inventory"]
SCHEMA_FILES: dict[DemoName, Path] = {
    "shop": SCHEMA_DIR / "shop" / "postgres.sql",
    "inventory": SCHEMA_DIR / "inventory" / "mariadb.sql",
}
# Tables in dependency order (parents first), so seeding and existence checks share one list.
SHOP_TABLES = ("customers", "products", "orders", "order_items", "payments")
INVENTORY_TABLES = ("warehouses", "suppliers", "stock_levels", "shipments")
PG_SCHEMA = "public"

Progress = Callable[[str], object]


# ---------------------------------------------------------------------------------------------
# Matching sources and connecting
# ---------------------------------------------------------------------------------------------


def demo_name(source: SourceConfig) -> DemoName | None:
    """Which demo database `source` is ("shop" or "inventory"), or None for any other source."""
    if source.kind == "postgres" and source.database == "shop":
        return "shop"
    if source.kind in ("mariadb", "mysql") and source.database == "inventory":
        return "inventory"
    return None


def admin_credentials(layout: StackLayout, source: SourceConfig) -> Credentials:
    """The local stack's admin user for the server `source` lives on."""
    return layout.pg_admin if source.kind == "postgres" else layout.mariadb_admin


def is_local_demo_source(layout: StackLayout, source: SourceConfig) -> bool:
    """True when `source` is a demo database on the local stack (so we may write to it)."""
    # A source with the demo name but on another port is someone else's server: leave it alone.
    return demo_name(source) is not None and source.port == admin_credentials(layout, source).port


def pg_connect(creds: Credentials, dbname: str, *, autocommit: bool = False) -> psycopg.Connection:
    """A psycopg connection as `creds` to `dbname`; connection failures become StackError."""
    try:
        return psycopg.connect(
            host=creds.host,
            port=creds.port,
            user=creds.user,
            password=creds.password(),
            dbname=dbname,
            autocommit=autocommit,
            connect_timeout=10,
            application_name="cdchub-demo",
        )
    except (psycopg.OperationalError, OSError) as exc:
        raise StackError(
            f"cannot connect to PostgreSQL: {exc}".strip(),
            host=creds.host,
            port=creds.port,
            user=creds.user,
            database=dbname,
        ) from exc


def mariadb_connect(creds: Credentials, database: str | None) -> pymysql.connections.Connection:
    """A PyMySQL connection as `creds` (UTC session, utf8mb4, explicit transactions).

    PyMySQL does not set CLIENT.FOUND_ROWS, so `cursor.rowcount` after an UPDATE counts rows that
    really changed -- exactly the rows that reach the binlog.
    """
    try:
        return pymysql.connect(
            host=creds.host,
            port=creds.port,
            user=creds.user,
            password=creds.password(),
            database=database,
            charset="utf8mb4",
            autocommit=False,
            connect_timeout=10,
            # TIMESTAMP columns convert through the session zone; UTC keeps values as written.
            init_command="SET time_zone = '+00:00'",
        )
    except (pymysql.err.OperationalError, OSError) as exc:
        raise StackError(
            f"cannot connect to MariaDB: {exc}",
            host=creds.host,
            port=creds.port,
            user=creds.user,
            database=database,
        ) from exc


def source_connection(
    layout: StackLayout, source: SourceConfig
) -> psycopg.Connection | pymysql.connections.Connection:
    """An admin (application) connection to the demo database of `source`, not autocommit."""
    creds = admin_credentials(layout, source)
    if source.kind == "postgres":
        return pg_connect(creds, source.database)
    return mariadb_connect(creds, source.database)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def load_demo_schemas(
    layout: StackLayout, sources: list[SourceConfig], progress: Progress = print
) -> None:
    """Create, seed and grant the demo databases of `sources` on the local stack; idempotent.

    Raises:
        StackError: a server cannot be reached or refuses a statement.
        ConfigError: a PostgreSQL source lists tables that do not exist.
    """
    for source in sources:
        name = demo_name(source)
        if name is None:
            progress(f"demo: skipping source {source.name}: not a demo database")
            continue
        if not is_local_demo_source(layout, source):
            progress(
                f"demo: skipping source {source.name}: port {source.port} is not the local stack's"
            )
            continue
        if name == "shop":
            _load_postgres(layout, source, progress)
        else:
            _load_mariadb(layout, source, progress)


# ---------------------------------------------------------------------------------------------
# PostgreSQL: the shop
# ---------------------------------------------------------------------------------------------


def _load_postgres(layout: StackLayout, source: SourceConfig, progress: Progress) -> None:
    admin = layout.pg_admin
    where = f"{source.name} (postgres {admin.host}:{admin.port}/{source.database})"
    try:
        with pg_connect(admin, "postgres", autocommit=True) as conn:
            if postgres_admin.create_database(conn, source.database):
                progress(f"demo: {where}: created database")
        with pg_connect(admin, source.database) as conn:
            missing = _pg_missing_tables(conn)
            if missing:
                conn.execute(SCHEMA_FILES["shop"].read_text())
                conn.commit()
                progress(f"demo: {where}: created tables {', '.join(missing)}")
            counts = _pg_counts(conn)
            if any(counts.values()):
                progress(f"demo: {where}: tables hold data, not seeding")
            else:
                seeded = _seed_shop(conn)
                conn.commit()
                summary = ", ".join(f"{n} {t}" for t, n in seeded.items())
                progress(f"demo: {where}: seeded {summary}")
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


# ---------------------------------------------------------------------------------------------
# MariaDB: the inventory
# ---------------------------------------------------------------------------------------------


def mysql_ident(name: str) -> str:
    """A back-quoted MySQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def split_sql_script(text: str) -> list[str]:
    """Statements of a script whose statements end with ';' at the end of a line."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.MULTILINE) if s.strip()]


def _load_mariadb(layout: StackLayout, source: SourceConfig, progress: Progress) -> None:
    admin = layout.mariadb_admin
    where = f"{source.name} ({source.kind} {admin.host}:{admin.port}/{source.database})"
    try:
        conn = mariadb_connect(admin, None)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW DATABASES LIKE %s", (source.database,))
                if cur.fetchone() is None:
                    cur.execute(
                        f"CREATE DATABASE IF NOT EXISTS {mysql_ident(source.database)} "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
                    progress(f"demo: {where}: created database")
                cur.execute(f"USE {mysql_ident(source.database)}")
                cur.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (source.database,),
                )
                present = {r[0] for r in cur.fetchall()}
                missing = [t for t in INVENTORY_TABLES if t not in present]
                if missing:
                    for stmt in split_sql_script(SCHEMA_FILES["inventory"].read_text()):
                        cur.execute(stmt)
                    progress(f"demo: {where}: created tables {', '.join(missing)}")
                counts = {}
                for table in INVENTORY_TABLES:
                    cur.execute(f"SELECT count(*) FROM {mysql_ident(table)}")
                    row = cur.fetchone()
                    counts[table] = int(row[0]) if row else 0
                if any(counts.values()):
                    progress(f"demo: {where}: tables hold data, not seeding")
                else:
                    seeded = _seed_inventory(cur)
                    conn.commit()
                    summary = ", ".join(f"{n} {t}" for t, n in seeded.items())
                    progress(f"demo: {where}: seeded {summary}")
                _mariadb_signal_table(cur, source, layout.mariadb_cdc.user)
                conn.commit()
        finally:
            conn.close()
    except pymysql.err.MySQLError as exc:
        raise StackError(
            f"loading the demo schema failed: {exc}", source=source.name, database=source.database
        ) from exc


def _mariadb_signal_table(cur: Any, source: SourceConfig, cdc_user: str) -> None:
    """The Debezium signaling table `cdchub backfill` writes to, writable by the CDC user."""
    found = signals.signal_table(source)
    if found is None:
        return
    cur.execute(signals.create_statement(source))
    table = f"{mysql_ident(found[0])}.{mysql_ident(found[1])}"
    for host in ("localhost", "127.0.0.1", "%"):
        cur.execute("SELECT 1 FROM mysql.user WHERE user = %s AND host = %s", (cdc_user, host))
        if cur.fetchone():
            cur.execute(f"GRANT SELECT, INSERT, DELETE ON {table} TO %s@%s", (cdc_user, host))


WAREHOUSE_COLS = (
    "warehouse_id", "code", "name", "city", "country_code", "capacity_m3", "is_active",
    "opened_on", "meta", "created_at", "updated_at",
)  # fmt: skip
SUPPLIER_COLS = (
    "supplier_id", "name", "contact_email", "phone", "country_code", "status", "credit_limit",
    "lead_time_days", "is_preferred", "terms", "notes", "created_at", "updated_at",
)  # fmt: skip
STOCK_COLS = (
    "warehouse_id", "sku", "quantity_on_hand", "quantity_reserved", "reorder_point", "unit_cost",
    "bin_location", "last_counted_on", "updated_at",
)  # fmt: skip
SHIPMENT_COLS = (
    "shipment_id", "warehouse_id", "supplier_id", "direction", "status", "sku", "quantity",
    "total_cost", "carrier", "tracking_number", "is_fragile", "manifest", "notes", "expected_on",
    "shipped_at", "delivered_at", "created_at", "updated_at",
)  # fmt: skip


def to_json(value: Any) -> str | None:
    """JSON text for a MariaDB JSON column (non-ASCII kept as is), or None."""
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def naive_utc(value: datetime | None) -> datetime | None:
    """`value` as naive UTC: what PyMySQL sends for DATETIME/TIMESTAMP in a UTC session."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def bin_location(rng: random.Random) -> str | None:
    """A shelf code, sometimes unknown (NULL) or not yet assigned ('')."""
    return rng.choice([None, "", f"A{rng.randint(1, 40):02d}-{rng.randint(1, 9)}"])


def _seed_inventory(cur: pymysql.cursors.Cursor) -> dict[str, int]:
    """Write the deterministic initial inventory: 3 warehouses, 20 suppliers, stock, shipments."""
    rng = random.Random("cdchub-demo-inventory")
    t = naive_utc
    warehouses = []
    for wid, (code, name, city, country) in enumerate(
        [
            ("BER-1", "Berlin Süd", "Berlin", "DE"),
            ("LIS-1", "Lisboa Armazém", "Lisboa", "PT"),
            ("KRK-1", "Kraków Magazyn Główny", "Kraków", "PL"),
        ],
        start=1,
    ):
        created = fd.EPOCH + fd.micro_jitter(rng, 30 * 86400)
        warehouses.append(
            (
                wid,
                code,
                name,
                city,
                country,
                fd.money(rng, 1000, 90000),
                1,
                (created - timedelta(days=rng.randint(100, 3000))).date(),
                to_json({"manager": fd.person_name(rng), "docks": rng.randint(2, 12)}),
                t(created),
                t(created + fd.micro_jitter(rng, 86400)),
            )
        )
    suppliers = []
    for sid in range(1, 21):
        name = fd.supplier_name(rng)
        created = fd.EPOCH + fd.micro_jitter(rng, 120 * 86400)
        suppliers.append(
            (
                sid,
                name,
                rng.choice([None, fd.email_for(name, rng)]),
                fd.phone(rng),
                rng.choice(fd.CITIES)[1],
                rng.choices(["active", "on_hold", "terminated"], weights=[8, 1, 1])[0],
                rng.choice([Decimal(0), fd.money(rng, 1000, 500000), Decimal("9999999999.99")]),
                rng.randint(1, 90),
                int(rng.random() < 0.3),
                to_json(fd.supplier_terms(rng)),
                fd.note(rng),
                t(created),
                t(created + fd.micro_jitter(rng, 30 * 86400)),
            )
        )
    stock = []
    for wid in range(1, 4):
        for number in range(1, fd.SEED_SKU_COUNT + 1):
            if rng.random() < 0.6:
                stock.append(
                    (
                        wid,
                        fd.sku_for(number),
                        rng.choice([0, rng.randint(1, 500), rng.randint(1, 500), -3]),  # backorder
                        rng.randint(0, 20),
                        rng.choice([5, 10, 25, 100]),
                        fd.money(rng, 0.5, 400),
                        bin_location(rng),
                        (fd.EPOCH + timedelta(days=rng.randint(0, 300))).date()
                        if rng.random() < 0.7
                        else None,
                        t(fd.EPOCH + fd.micro_jitter(rng, 300 * 86400)),
                    )
                )
    shipments = []
    created_times = sorted(
        fd.EPOCH + timedelta(days=150) + fd.micro_jitter(rng, 200 * 86400) for _ in range(100)
    )
    for shid, created in enumerate(created_times, start=1):
        wid, sku = rng.choice(stock)[:2]
        shipments.append(shipment_row(rng, wid, sku, created, rng.randint(1, 20), shipment_id=shid))
    _insert_mysql(cur, "warehouses", WAREHOUSE_COLS, warehouses)
    _insert_mysql(cur, "suppliers", SUPPLIER_COLS, suppliers)
    _insert_mysql(cur, "stock_levels", STOCK_COLS, stock)
    _insert_mysql(cur, "shipments", SHIPMENT_COLS, shipments)
    return {
        "warehouses": len(warehouses),
        "suppliers": len(suppliers),
        "stock_levels": len(stock),
        "shipments": len(shipments),
    }


def shipment_row(
    rng: random.Random,
    warehouse_id: int,
    sku: str,
    created: datetime,
    supplier_id: int | None,
    *,
    shipment_id: int | None = None,
    status: str | None = None,
    direction: str | None = None,
    quantity: int | None = None,
    shipped_at: datetime | None = None,
) -> tuple[Any, ...]:
    """A shipments row in `SHIPMENT_COLS` order (`shipment_id` first, None for AUTO_INCREMENT).

    The one builder of the seed (shipments created in the past) and the workload (created now):
    unless planned, a shipment ships at `shipped_at` (default: within two days of creation) with a
    carrier and a tracking number; a delivered one arrives within five days of shipping.
    """
    direction = direction or rng.choices(["inbound", "outbound", "transfer"], weights=[5, 4, 1])[0]
    status = (
        status or rng.choices(["planned", "in_transit", "delivered", "cancelled"], [2, 2, 5, 1])[0]
    )
    quantity = quantity or rng.choice([1, 2, 10, 24, 100, 4_000_000_000])  # near INT UNSIGNED max
    shipped = None
    if status != "planned":
        shipped = shipped_at or created + fd.micro_jitter(rng, 2 * 86400)
    delivered = (
        shipped + fd.micro_jitter(rng, 5 * 86400) if status == "delivered" and shipped else None
    )
    carrier = rng.choice(fd.CARRIERS) if status != "planned" else None
    return (
        shipment_id,
        warehouse_id,
        supplier_id if direction == "inbound" else None,
        direction,
        status,
        sku,
        quantity,
        None if direction == "transfer" else fd.money(rng, 5, 50000),
        carrier,
        f"{rng.getrandbits(48):012X}" if carrier else None,
        int(rng.random() < 0.15),
        to_json(fd.manifest(rng, sku, quantity)) if rng.random() < 0.8 else None,
        fd.note(rng),
        (created + timedelta(days=rng.randint(1, 14))).date(),
        naive_utc(shipped),
        naive_utc(delivered),
        naive_utc(created),
        naive_utc(delivered or shipped or created),
    )


def _insert_mysql(
    cur: pymysql.cursors.Cursor, table: str, cols: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    stmt = "INSERT INTO {} ({}) VALUES ({})".format(
        mysql_ident(table), ", ".join(map(mysql_ident, cols)), ", ".join(["%s"] * len(cols))
    )
    cur.executemany(stmt, rows)
