"""A deterministic business workload against the demo databases (shop on PostgreSQL, inventory on
MariaDB), so the CDC pipeline has a realistic stream of inserts, updates and deletes to carry.

The workload plays the application: it connects as the stack's admin users and runs small
multi-statement transactions (place an order with its items and payment, ship it, cancel it,
restock a warehouse, ...), alternating between the sources at random.

Determinism: every choice comes from one `random.Random`, seeded with `seed` and a fingerprint of
the databases' starting state, and existing rows are chosen by `ORDER BY key LIMIT 1 OFFSET k`
inside the transaction. Timestamps come from a simulated clock, never from the wall clock. So the
same seed on the same starting data yields the same final data (and, with `events`, exactly that
many row changes), while a second run on already-changed data does not collide with the first.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pymysql
from psycopg.types.json import Jsonb

from core.config import SourceConfig
from core.errors import ConfigError, StackError
from dbschemas import fakedata as fd
from dbschemas.loader import (
    SHIPMENT_COLS,
    demo_name,
    is_local_demo_source,
    naive_utc,
    shipment_row,
    source_connection,
    to_json,
)
from infrastructure.stack.layout import StackLayout

Progress = Callable[[str], object]
PROGRESS_EVERY_S = 2.0
OPS = ("insert", "update", "delete")
INT4_MAX = 2_147_483_647
# Every column but the AUTO_INCREMENT key, from the one shipments row builder's column list.
_SHIPMENT_INSERT = (
    f"INSERT INTO shipments ({', '.join(SHIPMENT_COLS[1:])})"
    f" VALUES ({', '.join(['%s'] * (len(SHIPMENT_COLS) - 1))})"
)
# Orders never include the deliberately absurd-priced product, so totals fit numeric(12,2).
MAX_ORDERABLE_PRICE = Decimal(100_000)


@dataclass
class SourceStats:
    """Row changes and transactions committed on one source."""

    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    transactions: int = 0
    # table -> {"insert"|"update"|"delete": rows}
    tables: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        """All committed row changes."""
        return self.inserts + self.updates + self.deletes

    def add(self, table: str, op: str, rows: int) -> None:
        """Record `rows` committed changes of kind `op` on `table`."""
        setattr(self, f"{op}s", getattr(self, f"{op}s") + rows)
        per_table = self.tables.setdefault(table, dict.fromkeys(OPS, 0))
        per_table[op] += rows


@dataclass
class WorkloadResult:
    """What a workload run committed, per source, and how long it took."""

    sources: dict[str, SourceStats]
    elapsed: float
    interrupted: bool = False

    @property
    def transactions(self) -> int:
        """Committed transactions over all sources."""
        return sum(s.transactions for s in self.sources.values())

    @property
    def changes(self) -> int:
        """Committed row changes over all sources."""
        return sum(s.changes for s in self.sources.values())

    @property
    def rate(self) -> float:
        """Achieved row changes per second."""
        return self.changes / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> str:
        """One line per source plus a total, for the CLI."""
        lines = [
            f"{name}: {s.changes} changes ({s.inserts} ins, {s.updates} upd, {s.deletes} del) "
            f"in {s.transactions} tx"
            for name, s in self.sources.items()
        ]
        lines.append(
            f"total: {self.changes} changes in {self.transactions} tx, "
            f"{self.elapsed:.1f}s, {self.rate:.0f}/s"
            + (" (interrupted)" if self.interrupted else "")
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# ---------------------------------------------------------------------------------------------
# Transaction plumbing shared by both databases
# ---------------------------------------------------------------------------------------------


class _Tx:
    """One open transaction: runs statements and counts the rows they change until commit."""

    def __init__(self, conn: Any, *, mysql: bool) -> None:
        self.conn = conn
        self.mysql = mysql
        self.pending: list[tuple[str, str, int]] = []

    def _cursor(self) -> Any:
        return self.conn.cursor()

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query."""
        with self._cursor() as cur:
            cur.execute(query, tuple(params))
            return list(cur.fetchall())

    def one(self, query: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        with self._cursor() as cur:
            cur.execute(query, tuple(params))
            return cur.fetchone()

    def scalar(self, query: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row."""
        row = self.one(query, params)
        return row[0] if row else None

    def change(self, op: str, table: str, query: str, params: Sequence[Any] = ()) -> int:
        """Run a DML statement and remember how many rows it really changed."""
        with self._cursor() as cur:
            cur.execute(query, tuple(params))
            count = max(cur.rowcount, 0)
            self.pending.append((table, op, count))
            return count

    def insert_id(self, table: str, query: str, params: Sequence[Any]) -> int:
        """Insert one row and return its generated key (RETURNING on PostgreSQL)."""
        with self._cursor() as cur:
            cur.execute(query, tuple(params))
            self.pending.append((table, "insert", max(cur.rowcount, 0)))
            if self.mysql:
                return int(cur.lastrowid)
            row = cur.fetchone()
            assert row is not None
            return int(row[0])

    def pick(
        self,
        rng: random.Random,
        table: str,
        cols: str,
        order: str,
        where: str = "",
        params: Sequence[Any] = (),
        k: int = 1,
    ) -> list[tuple[Any, ...]]:
        """Up to `k` distinct rows chosen at random, deterministically (ORDER BY + OFFSET)."""
        n = int(self.scalar(f"SELECT count(*) FROM {table} {where}", params) or 0)
        if n == 0:
            return []
        picked = []
        for offset in sorted(rng.sample(range(n), k=min(k, n))):
            row = self.one(
                f"SELECT {cols} FROM {table} {where} ORDER BY {order} LIMIT 1 OFFSET %s",
                (*params, offset),
            )
            if row is not None:
                picked.append(row)
        return picked

    def pick_one(self, rng: random.Random, *args: Any, **kwargs: Any) -> tuple[Any, ...] | None:
        """One row chosen like `pick`, or None when none qualifies."""
        rows = self.pick(rng, *args, **kwargs)
        return rows[0] if rows else None

    def changed(self) -> int:
        """Rows changed so far in this transaction."""
        return sum(c for _t, _o, c in self.pending)


class _Clock:
    """Simulated business time: advances a random few hundred ms per transaction."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def tick(self, rng: random.Random) -> datetime:
        """Advance by 1 µs to 2 s and return the new time."""
        self.now += timedelta(microseconds=rng.randint(1, 2_000_000))
        return self.now


Op = Callable[[_Tx, random.Random, datetime, int], bool]


class _Business:
    """The operations of one demo database; each returns False when it cannot run or fit."""

    mysql = False

    def ops(self) -> list[tuple[Op, int]]:
        """(operation, weight) pairs."""
        raise NotImplementedError

    def fallback(self) -> list[Op]:
        """One-row operations tried in order when the chosen one does not apply."""
        raise NotImplementedError

    def fingerprint(self, tx: _Tx) -> str:
        """Row counts and newest timestamp: the starting state the random stream is tied to."""
        raise NotImplementedError

    def latest(self, tx: _Tx) -> datetime | None:
        """The newest business timestamp in the database."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# The shop (PostgreSQL)
# ---------------------------------------------------------------------------------------------


class _Shop(_Business):
    TABLES = ("customers", "products", "orders", "order_items", "payments")

    def ops(self) -> list[tuple[Op, int]]:
        return [
            (self.place_order, 30),
            (self.pay_order, 12),
            (self.ship_order, 12),
            (self.deliver_order, 8),
            (self.cancel_order, 6),
            (self.edit_order_item, 6),
            (self.change_product, 8),
            (self.edit_customer, 10),
            (self.new_customer, 5),
            (self.new_product, 2),
            (self.forget_customer, 2),
        ]

    def fallback(self) -> list[Op]:
        return [self.edit_customer, self.new_customer]

    def fingerprint(self, tx: _Tx) -> str:
        counts = [tx.scalar(f"SELECT count(*) FROM public.{t}") for t in self.TABLES]
        return f"shop:{counts}:{self.latest(tx)}"

    def latest(self, tx: _Tx) -> datetime | None:
        return tx.scalar(
            "SELECT greatest((SELECT max(updated_at) FROM public.customers),"
            " (SELECT max(updated_at) FROM public.products),"
            " (SELECT max(updated_at) FROM public.orders),"
            " (SELECT max(paid_at) FROM public.payments))"
        )

    @staticmethod
    def _payment(
        tx: _Tx, rng: random.Random, now: datetime, order_id: int, amount: Decimal, ok: bool
    ) -> None:
        method = rng.choice(fd.PAYMENT_METHODS)
        details: dict[str, Any] | None = {"method": method, "3ds": rng.random() < 0.5}
        if not ok:
            details = {"error": rng.choice(["card_declined", "expired_card", "do_not_honor"])}
        tx.change(
            "insert",
            "payments",
            "INSERT INTO public.payments (order_id, amount, method, provider_ref, succeeded,"
            " details, paid_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                order_id,
                amount,
                method,
                fd.new_uuid(rng) if method != "bank_transfer" else None,
                ok,
                Jsonb(details),
                now,
            ),
        )

    def place_order(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """Insert an order with 1-5 lines and, usually, its payment."""
        if budget < 2:
            return False
        n_items, pay = rng.randint(1, 5), rng.random() < 0.6
        # Shrink the order to the remaining budget of row changes.
        n_items = min(n_items, budget - 1 - pay)
        if n_items < 1:
            pay, n_items = False, 1
        customer = tx.pick_one(rng, "public.customers", "customer_id", "customer_id")
        products = tx.pick(
            rng,
            "public.products",
            "product_id, price",
            "product_id",
            "WHERE NOT is_discontinued AND price < %s",
            (MAX_ORDERABLE_PRICE,),
            k=n_items,
        )
        if customer is None or not products:
            return False
        lines = [
            (
                line_no,
                pid,
                rng.choice([1, 1, 1, 2, 3, 4, 12, 500]),
                price,
                rng.choice([0.0, 0.0, 0.0, 5.0, 10.0, 12.5, 100.0 / 3]),
            )
            for line_no, (pid, price) in enumerate(products, start=1)
        ]
        total = _total((q, p, d) for _n, _pid, q, p, d in lines)
        order_id = tx.insert_id(
            "orders",
            "INSERT INTO public.orders (order_uuid, customer_id, status, order_date, placed_at,"
            " total_amount, currency, shipping_address, notes, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING order_id",
            (
                fd.new_uuid(rng),
                customer[0],
                "paid" if pay else "pending",
                now.date(),
                now,
                total,
                rng.choice(["EUR", "EUR", "USD", "GBP", "JPY"]),
                Jsonb(fd.address(rng)),
                fd.note(rng),
                now,
            ),
        )
        for line_no, pid, qty, price, discount in lines:
            tx.change(
                "insert",
                "order_items",
                "INSERT INTO public.order_items (order_id, line_no, product_id, quantity,"
                " unit_price, discount_pct) VALUES (%s, %s, %s, %s, %s, %s)",
                (order_id, line_no, pid, qty, price, discount),
            )
        if pay:
            self._payment(tx, rng, now, order_id, total, ok=True)
        return True

    def pay_order(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A pending order gets paid (sometimes after a declined attempt)."""
        if budget < 2:
            return False
        order = tx.pick_one(
            rng,
            "public.orders",
            "order_id, total_amount",
            "order_id",
            "WHERE status = 'pending'",
        )
        if order is None:
            return False
        if budget >= 3 and rng.random() < 0.15:
            self._payment(tx, rng, now, order[0], order[1], ok=False)
        self._payment(tx, rng, now, order[0], order[1], ok=True)
        tx.change(
            "update",
            "orders",
            "UPDATE public.orders SET status = 'paid', updated_at = %s WHERE order_id = %s",
            (now, order[0]),
        )
        return True

    def ship_order(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A paid order ships; its customer earns loyalty points."""
        if budget < 2:
            return False
        order = tx.pick_one(
            rng,
            "public.orders",
            "order_id, customer_id, total_amount",
            "order_id",
            "WHERE status = 'paid'",
        )
        if order is None:
            return False
        tx.change(
            "update",
            "orders",
            "UPDATE public.orders SET status = 'shipped', shipped_at = %s, updated_at = %s,"
            " notes = %s WHERE order_id = %s",
            (now, now, rng.choice([None, "", f"Tracking {rng.getrandbits(40):010X} 📦"]), order[0]),
        )
        points = int(min(order[2], Decimal(1_000_000)))
        tx.change(
            "update",
            "customers",
            "UPDATE public.customers SET loyalty_points = least(loyalty_points::bigint + %s, %s),"
            " updated_at = %s WHERE customer_id = %s",
            (points, INT4_MAX, now, order[1]),
        )
        return True

    def deliver_order(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A shipped order arrives."""
        order = tx.pick_one(
            rng, "public.orders", "order_id", "order_id", "WHERE status = 'shipped'"
        )
        if order is None:
            return False
        tx.change(
            "update",
            "orders",
            "UPDATE public.orders SET status = 'delivered', updated_at = %s WHERE order_id = %s",
            (now, order[0]),
        )
        return True

    def cancel_order(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """An unshipped order is withdrawn: its payments, lines and the order are deleted."""
        order = tx.pick_one(
            rng,
            "public.orders",
            "order_id",
            "order_id",
            "WHERE status IN ('pending', 'paid')",
        )
        if order is None:
            return False
        cost = 1 + int(
            tx.scalar(
                "SELECT (SELECT count(*) FROM public.order_items WHERE order_id = %s)"
                " + (SELECT count(*) FROM public.payments WHERE order_id = %s)",
                (order[0], order[0]),
            )
        )
        if cost > budget:
            return False
        tx.change(
            "delete", "payments", "DELETE FROM public.payments WHERE order_id = %s", (order[0],)
        )
        tx.change(
            "delete",
            "order_items",
            "DELETE FROM public.order_items WHERE order_id = %s",
            (order[0],),
        )
        tx.change("delete", "orders", "DELETE FROM public.orders WHERE order_id = %s", (order[0],))
        return True

    def edit_order_item(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """The customer changes a quantity on a pending order; the total follows."""
        if budget < 2:
            return False
        item = tx.pick_one(
            rng,
            "public.order_items i",
            "i.order_id, i.line_no, i.quantity",
            "i.order_id, i.line_no",
            "WHERE EXISTS (SELECT 1 FROM public.orders o"
            " WHERE o.order_id = i.order_id AND o.status = 'pending')",
        )
        if item is None:
            return False
        order_id, line_no, quantity = item
        new_qty = quantity + rng.choice([-1, 1, 2, 10]) if quantity > 1 else quantity + 1
        tx.change(
            "update",
            "order_items",
            "UPDATE public.order_items SET quantity = %s WHERE order_id = %s AND line_no = %s",
            (new_qty, order_id, line_no),
        )
        lines = tx.rows(
            "SELECT quantity, unit_price, discount_pct FROM public.order_items"
            " WHERE order_id = %s ORDER BY line_no",
            (order_id,),
        )
        tx.change(
            "update",
            "orders",
            "UPDATE public.orders SET total_amount = %s, updated_at = %s WHERE order_id = %s",
            (_total(lines), now, order_id),
        )
        return True

    def change_product(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """Reprice, retag, re-describe or (un)discontinue a product."""
        product = tx.pick_one(
            rng, "public.products", "product_id, price, tags", "product_id", "WHERE price < %s",
            (MAX_ORDERABLE_PRICE,),
        )  # fmt: skip
        if product is None:
            return False
        pid, price, tags = product
        kind = rng.choice(["price", "price", "tags", "attributes", "discontinue", "describe"])
        if kind == "price":
            factor = Decimal(rng.choice([80, 90, 95, 105, 110, 125])) / 100
            new_price = max((price * factor).quantize(Decimal("0.01")), Decimal("0.01"))
            if new_price == price:
                new_price += Decimal("0.01")
            query, params = "price = %s", [new_price]
        elif kind == "tags":
            tag = rng.choice(fd.TAGS)
            new_tags = sorted(set(tags) - {tag}) if tag in tags else [*tags, tag]
            query, params = "tags = %s::text[]", [new_tags]
        elif kind == "attributes":
            query = "attributes = coalesce(attributes, '{}'::jsonb) || %s"
            params = [Jsonb({"restocked": now.isoformat(), "batch": rng.randint(1, 10**12)})]
        elif kind == "discontinue":
            query, params = "is_discontinued = NOT is_discontinued", []
        else:
            query = "description = %s, weight_kg = %s"
            params = [fd.note(rng), rng.choice([None, round(rng.uniform(0.001, 99.9), 6)])]
        tx.change(
            "update",
            "products",
            f"UPDATE public.products SET {query}, updated_at = %s WHERE product_id = %s",
            (*params, now, pid),
        )
        return True

    def edit_customer(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A customer edits the profile: phone, e-mail, name, preferences, segments, ..."""
        customer = tx.pick_one(
            rng, "public.customers", "customer_id, full_name, segments", "customer_id"
        )
        if customer is None:
            return False
        cid, name, segments = customer
        kind = rng.choice(["phone", "email", "name", "prefs", "segments", "active", "birth"])
        params: list[Any]
        if kind == "phone":
            query, params = "phone = %s", [fd.phone(rng)]
        elif kind == "email":
            query, params = "email = %s", [fd.email_for(name, rng)]
        elif kind == "name":
            query, params = "full_name = %s", [fd.person_name(rng)]
        elif kind == "prefs":
            query, params = "preferences = preferences || %s", [Jsonb(fd.preferences(rng))]
        elif kind == "segments":
            seg = rng.choice(fd.SEGMENTS)
            if seg in segments:
                query, params = "segments = array_remove(segments, %s::text)", [seg]
            else:
                query, params = "segments = array_append(segments, %s::text)", [seg]
        elif kind == "active":
            query, params = "is_active = NOT is_active", []
        else:
            query, params = "birth_date = %s", [fd.birth_date(rng)]
        tx.change(
            "update",
            "customers",
            f"UPDATE public.customers SET {query}, updated_at = %s WHERE customer_id = %s",
            (*params, now, cid),
        )
        return True

    def new_customer(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A visitor signs up."""
        name = fd.person_name(rng)
        tx.change(
            "insert",
            "customers",
            "INSERT INTO public.customers (external_id, email, full_name, phone, birth_date,"
            " loyalty_points, is_active, segments, preferences, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, 0, true, %s::text[], %s, %s, %s)",
            (
                fd.new_uuid(rng),
                fd.email_for(name, rng),
                name,
                fd.phone(rng),
                fd.birth_date(rng),
                fd.tags(rng, fd.SEGMENTS, 2),
                Jsonb(fd.preferences(rng)),
                now,
                now,
            ),
        )
        return True

    def new_product(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A product joins the catalogue."""
        tx.change(
            "insert",
            "products",
            "INSERT INTO public.products (sku, name, description, price, weight_kg, tags,"
            " attributes, reorder_level, is_discontinued, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s::text[], %s, %s, false, %s, %s)",
            (
                f"SKU-X{rng.getrandbits(40):010X}",
                fd.product_name(rng),
                fd.note(rng),
                fd.money(rng, 0, 2500),
                rng.choice([None, round(rng.uniform(0.01, 40.0), 3)]),
                fd.tags(rng),
                Jsonb(fd.product_attributes(rng)),
                rng.choice([0, 5, 10, 32767]),
                now,
                now,
            ),
        )
        return True

    def forget_customer(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A customer without orders asks to be erased."""
        customer = tx.pick_one(
            rng,
            "public.customers c",
            "c.customer_id",
            "c.customer_id",
            "WHERE NOT EXISTS (SELECT 1 FROM public.orders o WHERE o.customer_id = c.customer_id)",
        )
        if customer is None:
            return False
        tx.change(
            "delete",
            "customers",
            "DELETE FROM public.customers WHERE customer_id = %s",
            (customer[0],),
        )
        return True


def _total(lines: Any) -> Decimal:
    """An order total from (quantity, unit_price, discount_pct) rows, capped to numeric(12,2)."""
    total = Decimal(0)
    for qty, price, discount in lines:
        total += qty * price * (Decimal(1) - Decimal(str(discount)) / 100)
    return min(total.quantize(Decimal("0.01")), Decimal("9999999999.99"))


# ---------------------------------------------------------------------------------------------
# The inventory (MariaDB)
# ---------------------------------------------------------------------------------------------


class _Inventory(_Business):
    mysql = True
    TABLES = ("warehouses", "suppliers", "stock_levels", "shipments")

    def ops(self) -> list[tuple[Op, int]]:
        return [
            (self.plan_inbound, 12),
            (self.dispatch, 10),
            (self.receive, 10),
            (self.ship_out, 10),
            (self.cycle_count, 6),
            (self.cancel_shipment, 5),
            (self.drop_stock, 3),
            (self.new_stock, 3),
            (self.edit_supplier, 6),
            (self.new_supplier, 1),
            (self.edit_warehouse, 1),
        ]

    def fallback(self) -> list[Op]:
        return [self.edit_supplier, self.new_supplier]

    def fingerprint(self, tx: _Tx) -> str:
        counts = [tx.scalar(f"SELECT count(*) FROM {t}") for t in self.TABLES]
        return f"inventory:{counts}:{self.latest(tx)}"

    def latest(self, tx: _Tx) -> datetime | None:
        value = tx.scalar(
            "SELECT GREATEST(COALESCE((SELECT MAX(updated_at) FROM warehouses), 0),"
            " COALESCE((SELECT MAX(updated_at) FROM suppliers), 0),"
            " COALESCE((SELECT MAX(updated_at) FROM stock_levels), 0),"
            " COALESCE((SELECT MAX(updated_at) FROM shipments), 0))"
        )
        # The session runs in UTC, so naive values read back are UTC.
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) else None

    def plan_inbound(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """Purchasing plans a delivery from a supplier into a warehouse."""
        stock = tx.pick_one(rng, "stock_levels", "warehouse_id, sku", "warehouse_id, sku")
        supplier = tx.pick_one(
            rng, "suppliers", "supplier_id", "supplier_id", "WHERE status = 'active'"
        )
        if stock is None or supplier is None:
            return False
        self._insert_shipment(tx, rng, now, stock[0], stock[1], supplier[0], "inbound", "planned")
        return True

    @staticmethod
    def _insert_shipment(
        tx: _Tx,
        rng: random.Random,
        now: datetime,
        warehouse_id: int,
        sku: str,
        supplier_id: int | None,
        direction: str,
        status: str,
        quantity: int | None = None,
    ) -> None:
        row = shipment_row(
            rng,
            warehouse_id,
            sku,
            now,
            supplier_id,
            status=status,
            direction=direction,
            quantity=quantity or rng.choice([1, 2, 6, 12, 24, 48, 100, 250, 1000]),
            shipped_at=now,
        )
        tx.change("insert", "shipments", _SHIPMENT_INSERT, row[1:])

    def dispatch(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A planned shipment leaves with a carrier."""
        ship = tx.pick_one(
            rng, "shipments", "shipment_id", "shipment_id", "WHERE status = 'planned'"
        )
        if ship is None:
            return False
        carrier = rng.choice([c for c in fd.CARRIERS if c])
        tx.change(
            "update",
            "shipments",
            "UPDATE shipments SET status = 'in_transit', carrier = %s, tracking_number = %s,"
            " shipped_at = %s, updated_at = %s WHERE shipment_id = %s",
            (carrier, f"{rng.getrandbits(48):012X}", naive_utc(now), naive_utc(now), ship[0]),
        )
        return True

    def receive(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """An inbound or transfer shipment arrives and the warehouse stock goes up."""
        if budget < 2:
            return False
        ship = tx.pick_one(
            rng,
            "shipments",
            "shipment_id, warehouse_id, sku, quantity",
            "shipment_id",
            "WHERE status = 'in_transit' AND direction IN ('inbound', 'transfer')",
        )
        if ship is None:
            return False
        sid, wid, sku, qty = ship
        stamp = naive_utc(now)
        tx.change(
            "update",
            "shipments",
            "UPDATE shipments SET status = 'delivered', delivered_at = %s, updated_at = %s"
            " WHERE shipment_id = %s",
            (stamp, stamp, sid),
        )
        exists = tx.one(
            "SELECT 1 FROM stock_levels WHERE warehouse_id = %s AND sku = %s FOR UPDATE",
            (wid, sku),
        )
        if exists:
            tx.change(
                "update",
                "stock_levels",
                "UPDATE stock_levels SET quantity_on_hand = LEAST(quantity_on_hand + %s, %s),"
                " updated_at = %s WHERE warehouse_id = %s AND sku = %s",
                (qty, INT4_MAX, stamp, wid, sku),
            )
        else:
            self._insert_stock(tx, rng, now, wid, sku, min(qty, INT4_MAX))
        return True

    @staticmethod
    def _insert_stock(
        tx: _Tx, rng: random.Random, now: datetime, wid: int, sku: str, quantity: int
    ) -> None:
        tx.change(
            "insert",
            "stock_levels",
            "INSERT INTO stock_levels (warehouse_id, sku, quantity_on_hand, quantity_reserved,"
            " reorder_point, unit_cost, bin_location, last_counted_on, updated_at)"
            " VALUES (%s, %s, %s, 0, %s, %s, %s, NULL, %s)",
            (
                wid,
                sku,
                quantity,
                rng.choice([5, 10, 25, 100]),
                fd.money(rng, 0.5, 400),
                rng.choice([None, "", f"B{rng.randint(1, 40):02d}-{rng.randint(1, 9)}"]),
                naive_utc(now),
            ),
        )

    def ship_out(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """Goods leave a warehouse for a customer: stock goes down, an outbound shipment starts."""
        if budget < 2:
            return False
        stock = tx.pick_one(
            rng,
            "stock_levels",
            "warehouse_id, sku, quantity_on_hand",
            "warehouse_id, sku",
            "WHERE quantity_on_hand > 0",
        )
        if stock is None:
            return False
        wid, sku, on_hand = stock
        qty = rng.randint(1, min(on_hand, 50))
        tx.change(
            "update",
            "stock_levels",
            "UPDATE stock_levels SET quantity_on_hand = quantity_on_hand - %s, updated_at = %s"
            " WHERE warehouse_id = %s AND sku = %s",
            (qty, naive_utc(now), wid, sku),
        )
        self._insert_shipment(tx, rng, now, wid, sku, None, "outbound", "in_transit", qty)
        return True

    def cycle_count(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A stock take corrects 1-4 rows of one warehouse."""
        warehouse = tx.pick_one(rng, "warehouses", "warehouse_id", "warehouse_id")
        if warehouse is None:
            return False
        rows = tx.pick(
            rng,
            "stock_levels",
            "sku, quantity_on_hand",
            "sku",
            "WHERE warehouse_id = %s",
            (warehouse[0],),
            k=min(rng.randint(1, 4), budget),
        )
        if not rows:
            return False
        for sku, on_hand in rows:
            counted = max(on_hand + rng.choice([-5, -1, 1, 2, 7]), rng.choice([0, -2]))
            counted = min(counted, INT4_MAX)  # receipts may have filled a row to INT max
            tx.change(
                "update",
                "stock_levels",
                "UPDATE stock_levels SET quantity_on_hand = %s, last_counted_on = %s,"
                " bin_location = %s, updated_at = %s WHERE warehouse_id = %s AND sku = %s",
                (
                    counted,
                    now.date(),
                    rng.choice([None, "", f"C{rng.randint(1, 40):02d}-{rng.randint(1, 9)}"]),
                    naive_utc(now),
                    warehouse[0],
                    sku,
                ),
            )
        return True

    def cancel_shipment(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A planned shipment is called off: deleted outright, or kept as cancelled."""
        ship = tx.pick_one(
            rng, "shipments", "shipment_id", "shipment_id", "WHERE status = 'planned'"
        )
        if ship is None:
            return False
        if rng.random() < 0.6:
            tx.change("delete", "shipments", "DELETE FROM shipments WHERE shipment_id = %s", ship)
        else:
            tx.change(
                "update",
                "shipments",
                "UPDATE shipments SET status = 'cancelled', notes = %s, updated_at = %s"
                " WHERE shipment_id = %s",
                (rng.choice(["", None, "Supplier out of stock 😞"]), naive_utc(now), ship[0]),
            )
        return True

    def drop_stock(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A warehouse stops carrying an empty SKU: its stock row is deleted."""
        stock = tx.pick_one(
            rng,
            "stock_levels",
            "warehouse_id, sku",
            "warehouse_id, sku",
            "WHERE quantity_on_hand <= 5",
        )
        if stock is None:
            return False
        tx.change(
            "delete",
            "stock_levels",
            "DELETE FROM stock_levels WHERE warehouse_id = %s AND sku = %s",
            stock,
        )
        return True

    def new_stock(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A warehouse starts carrying a SKU it did not stock."""
        warehouse = tx.pick_one(rng, "warehouses", "warehouse_id", "warehouse_id")
        if warehouse is None:
            return False
        sku = fd.sku_for(rng.randint(1, fd.SEED_SKU_COUNT + 30))
        if tx.one(
            "SELECT 1 FROM stock_levels WHERE warehouse_id = %s AND sku = %s", (warehouse[0], sku)
        ):
            return False
        self._insert_stock(tx, rng, now, warehouse[0], sku, rng.randint(0, 300))
        return True

    def edit_supplier(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """Procurement edits a supplier: notes, terms, status, limits, contact."""
        supplier = tx.pick_one(rng, "suppliers", "supplier_id, name", "supplier_id")
        if supplier is None:
            return False
        sid, name = supplier
        kind = rng.choice(["notes", "terms", "status", "credit", "preferred", "contact"])
        params: list[Any]
        if kind == "notes":
            query, params = "notes = %s", [fd.note(rng)]
        elif kind == "terms":
            query = "terms = JSON_SET(COALESCE(terms, '{}'), '$.net_days', %s, '$.reviewed', %s)"
            params = [rng.choice([7, 14, 30, 60, 90]), now.isoformat()]
        elif kind == "status":
            query, params = "status = %s", [rng.choice(["active", "active", "on_hold"])]
        elif kind == "credit":
            query, params = "credit_limit = %s", [fd.money(rng, 0, 9_999_999)]
        elif kind == "preferred":
            query, params = "is_preferred = 1 - is_preferred", []
        else:
            query = "contact_email = %s, phone = %s"
            params = [rng.choice([None, fd.email_for(name, rng)]), fd.phone(rng)]
        tx.change(
            "update",
            "suppliers",
            f"UPDATE suppliers SET {query}, updated_at = %s WHERE supplier_id = %s",
            (*params, naive_utc(now), sid),
        )
        return True

    def new_supplier(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """A supplier is onboarded."""
        name = fd.supplier_name(rng)
        stamp = naive_utc(now)
        tx.change(
            "insert",
            "suppliers",
            "INSERT INTO suppliers (name, contact_email, phone, country_code, status,"
            " credit_limit, lead_time_days, is_preferred, terms, notes, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, 'active', %s, %s, 0, %s, %s, %s, %s)",
            (
                name,
                fd.email_for(name, rng),
                fd.phone(rng),
                rng.choice(fd.CITIES)[1],
                fd.money(rng, 0, 250000),
                rng.randint(1, 120),
                to_json(fd.supplier_terms(rng)),
                fd.note(rng),
                stamp,
                stamp,
            ),
        )
        return True

    def edit_warehouse(self, tx: _Tx, rng: random.Random, now: datetime, budget: int) -> bool:
        """Facilities changes a warehouse's capacity and metadata."""
        warehouse = tx.pick_one(rng, "warehouses", "warehouse_id", "warehouse_id")
        if warehouse is None:
            return False
        tx.change(
            "update",
            "warehouses",
            "UPDATE warehouses SET capacity_m3 = %s,"
            " meta = JSON_SET(COALESCE(meta, '{}'), '$.docks', %s, '$.manager', %s),"
            " updated_at = %s WHERE warehouse_id = %s",
            (
                fd.money(rng, 1000, 99999),
                rng.randint(1, 20),
                fd.person_name(rng),
                naive_utc(now),
                warehouse[0],
            ),
        )
        return True


# ---------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------


@dataclass
class _Target:
    source: SourceConfig
    business: _Business
    conn: Any
    stats: SourceStats


def _connect_targets(layout: StackLayout, sources: list[SourceConfig]) -> list[_Target]:
    targets: list[_Target] = []
    try:
        for source in sources:
            name = demo_name(source)
            if name is None or not is_local_demo_source(layout, source):
                continue
            business: _Business = _Shop() if name == "shop" else _Inventory()
            conn = source_connection(layout, source)
            targets.append(_Target(source, business, conn, SourceStats()))
    except BaseException:
        for t in targets:
            t.conn.close()
        raise
    return targets


def _run_tx(target: _Target, rng: random.Random, clock: _Clock, budget: int) -> _Tx:
    """Run one business transaction on `target` and commit it."""
    tx = _Tx(target.conn, mysql=target.business.mysql)
    now = clock.tick(rng)
    ops = target.business.ops()
    op = rng.choices([o for o, _w in ops], weights=[w for _o, w in ops])[0]
    try:
        done = op(tx, rng, now, budget)
        for fallback in target.business.fallback():
            if done:
                break
            # A failed op may have read but never writes, so the transaction is still clean.
            done = fallback(tx, rng, now, budget)
        target.conn.commit()
    except (psycopg.Error, pymysql.err.MySQLError) as exc:
        target.conn.rollback()
        raise StackError(
            f"workload transaction failed: {exc}", source=target.source.name, op=op.__name__
        ) from exc
    except BaseException:
        target.conn.rollback()
        raise
    return tx


def run_workload(
    layout: StackLayout,
    sources: list[SourceConfig],
    *,
    rate: float | None,
    duration: float | None,
    events: int | None,
    seed: int,
    progress: Progress = print,
) -> WorkloadResult:
    """Change the demo databases of `sources` with a deterministic business workload.

    Args:
        rate: target row changes per second (sleeps to pace); None runs flat out.
        duration: stop after this many seconds.
        events: stop after exactly this many committed row changes.
        seed: the random seed; same seed and same starting data give the same final data.

    Stops at whichever of `events` / `duration` comes first; Ctrl-C stops early and returns what
    was committed (with `interrupted=True`).

    Raises:
        ConfigError: neither events nor duration given, a bad rate, or no demo source to change.
        StackError: a database is unreachable or a transaction fails.
    """
    if events is None and duration is None:
        raise ConfigError("give the workload a size: events and/or duration")
    if rate is not None and rate <= 0:
        raise ConfigError("workload rate must be positive", rate=rate)
    if (events is not None and events < 0) or (duration is not None and duration < 0):
        raise ConfigError("workload events and duration must not be negative")
    targets = _connect_targets(layout, sources)
    if not targets:
        raise ConfigError(
            "no demo source to run the workload against (needs a postgres source on database "
            "'shop' or a mariadb source on database 'inventory' on the local stack)"
        )
    result = WorkloadResult({t.source.name: t.stats for t in targets}, 0.0)
    try:
        rng, clock = _start_state(targets, seed)
        _drive(targets, rng, clock, result, rate, duration, events, progress)
    finally:
        for t in targets:
            t.conn.close()
    progress(
        f"workload: done, {result.changes} changes in {result.transactions} tx, "
        f"{result.elapsed:.1f}s, {result.rate:.0f}/s"
    )
    return result


def _start_state(targets: list[_Target], seed: int) -> tuple[random.Random, _Clock]:
    """Seed the random stream with the starting data and start the clock after its newest row."""
    fingerprints, latest = [], []
    for t in targets:
        tx = _Tx(t.conn, mysql=t.business.mysql)
        fingerprints.append(t.business.fingerprint(tx))
        stamp = t.business.latest(tx)
        if stamp is not None:
            latest.append(stamp)
        t.conn.rollback()  # end the read-only snapshot
    start = max(latest, default=fd.EPOCH) + timedelta(seconds=1)
    # A str seed is hashed with SHA-512 by `random`, so this is stable across processes.
    return random.Random(f"{seed}|{'|'.join(fingerprints)}"), _Clock(start)


def _drive(
    targets: list[_Target],
    rng: random.Random,
    clock: _Clock,
    result: WorkloadResult,
    rate: float | None,
    duration: float | None,
    events: int | None,
    progress: Progress,
) -> None:
    started = time.monotonic()
    last_report = started
    done = 0
    try:
        while True:
            elapsed = time.monotonic() - started
            if (events is not None and done >= events) or (
                duration is not None and elapsed >= duration
            ):
                break
            budget = events - done if events is not None else 1_000_000
            target = rng.choice(targets)
            tx = _run_tx(target, rng, clock, budget)
            for table, op, count in tx.pending:
                target.stats.add(table, op, count)
            target.stats.transactions += 1
            done += tx.changed()
            now = time.monotonic()
            if rate is not None:
                # Pace on the cumulative count, so short stalls are caught up smoothly.
                ahead = done / rate - (now - started)
                if duration is not None:
                    ahead = min(ahead, duration - (now - started))
                if ahead > 0:
                    time.sleep(ahead)
                    now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                result.elapsed = now - started
                total = f"/{events}" if events is not None else ""
                progress(
                    f"workload: {done}{total} changes, {result.transactions} tx, "
                    f"{done / result.elapsed:.0f}/s"
                )
    except KeyboardInterrupt:
        result.interrupted = True
        progress("workload: interrupted")
    result.elapsed = time.monotonic() - started
