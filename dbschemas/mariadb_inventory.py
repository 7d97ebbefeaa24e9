"""The inventory on MariaDB: create the database and tables, seed them once, the signaling table.

`shipment_row` is the one shipments row builder, of the seed and of the workload.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

from connectors import signals
from core.config import SourceConfig
from core.errors import StackError
from dbschemas import Progress
from dbschemas import fakedata as fd
from dbschemas.demo_sources import mariadb_connect, mysql_ident, seed_if_empty
from infrastructure.stack.layout import StackLayout

SCHEMA_FILE = Path(__file__).resolve().parent / "inventory" / "mariadb.sql"
# Tables in dependency order (parents first), so seeding and existence checks share one list.
INVENTORY_TABLES = ("warehouses", "suppliers", "stock_levels", "shipments")


def split_sql_script(text: str) -> list[str]:
    """Statements of a script whose statements end with ';' at the end of a line."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.MULTILINE) if s.strip()]


def load_inventory(layout: StackLayout, source: SourceConfig, progress: Progress) -> None:
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
                    for stmt in split_sql_script(SCHEMA_FILE.read_text()):
                        cur.execute(stmt)
                    progress(f"demo: {where}: created tables {', '.join(missing)}")
                counts = {}
                for table in INVENTORY_TABLES:
                    cur.execute(f"SELECT count(*) FROM {mysql_ident(table)}")
                    row = cur.fetchone()
                    counts[table] = int(row[0]) if row else 0
                seed_if_empty(where, counts, lambda: _seed_inventory(cur), conn.commit, progress)
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
