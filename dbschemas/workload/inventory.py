"""The inventory's business (MariaDB): shipments in and out, stock counts, suppliers, warehouses."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from dbschemas import fakedata as fd
from dbschemas.mariadb_inventory import (
    INVENTORY_TABLES,
    SHIPMENT_COLS,
    naive_utc,
    shipment_row,
    to_json,
)
from dbschemas.workload.tx import INT4_MAX, Business, Op, Tx

# Every column but the AUTO_INCREMENT key, from the one shipments row builder's column list.
_SHIPMENT_INSERT = (
    f"INSERT INTO shipments ({', '.join(SHIPMENT_COLS[1:])})"
    f" VALUES ({', '.join(['%s'] * (len(SHIPMENT_COLS) - 1))})"
)


class Inventory(Business):
    """The operations of the inventory database (MariaDB)."""

    mysql = True
    TABLES = INVENTORY_TABLES

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

    def fingerprint(self, tx: Tx) -> str:
        counts = [tx.scalar(f"SELECT count(*) FROM {t}") for t in self.TABLES]
        return f"inventory:{counts}:{self.latest(tx)}"

    def latest(self, tx: Tx) -> datetime | None:
        value = tx.scalar(
            "SELECT GREATEST(COALESCE((SELECT MAX(updated_at) FROM warehouses), 0),"
            " COALESCE((SELECT MAX(updated_at) FROM suppliers), 0),"
            " COALESCE((SELECT MAX(updated_at) FROM stock_levels), 0),"
            " COALESCE((SELECT MAX(updated_at) FROM shipments), 0))"
        )
        # The session runs in UTC, so naive values read back are UTC.
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) else None

    def plan_inbound(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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
        tx: Tx,
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

    def dispatch(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def receive(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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
        tx: Tx, rng: random.Random, now: datetime, wid: int, sku: str, quantity: int
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

    def ship_out(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def cycle_count(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def cancel_shipment(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def drop_stock(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def new_stock(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def edit_supplier(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def new_supplier(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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

    def edit_warehouse(self, tx: Tx, rng: random.Random, now: datetime, budget: int) -> bool:
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
