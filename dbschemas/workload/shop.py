"""The shop's business (PostgreSQL): orders with items and payments, shipping, customers, products."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from dbschemas import fakedata as fd
from dbschemas.postgres_shop import SHOP_TABLES
from dbschemas.workload.tx import INT4_MAX, Business, Op, Tx

# Orders never include the deliberately absurd-priced product, so totals fit numeric(12,2).
MAX_ORDERABLE_PRICE = Decimal(100_000)


class Shop(Business):
    """The operations of the shop database (PostgreSQL)."""

    TABLES = SHOP_TABLES

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

    def fingerprint(self, tx: Tx) -> str:
        counts = [tx.scalar(f"SELECT count(*) FROM public.{t}") for t in self.TABLES]
        return f"shop:{counts}:{self.latest(tx)}"

    def latest(self, tx: Tx) -> datetime | None:
        return tx.scalar(
            "SELECT greatest((SELECT max(updated_at) FROM public.customers),"
            " (SELECT max(updated_at) FROM public.products),"
            " (SELECT max(updated_at) FROM public.orders),"
            " (SELECT max(paid_at) FROM public.payments))"
        )

    @staticmethod
    def _payment(
        tx: Tx, rng: random.Random, now: datetime, order_id: int, amount: Decimal, ok: bool
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

    def place_order(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def pay_order(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def ship_order(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def deliver_order(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def cancel_order(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def edit_order_item(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def change_product(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def edit_customer(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def new_customer(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def new_product(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def forget_customer(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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
