"""Sakila for MySQL (schema only) on the local MariaDB as database `sakila`, with generated rows.

The schema script runs unchanged through the `mariadb` client (its triggers fill `film_text`). Rows
come from `rows.generate` (deterministic, FK-consistent), converted to MySQL's shapes: SET as a
comma list, instants as naive UTC (the session runs in UTC), booleans as 0/1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbschemas.demo_sources import mariadb_connect, mysql_ident
from dbschemas.samples import mariadbserver, rows
from dbschemas.samples.datasets import dataset_file
from infrastructure.stack.layout import StackLayout

DATABASE = "sakila"
DIR = "sakila-mysql"
MARKER_TABLE = "payment"
ORDER = ["language", "category", "country", "city", "address", "actor", "store", "staff", "film",
         "film_actor", "film_category", "customer", "inventory", "rental", "payment"]  # fmt: skip


def _mysql_value(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _insert(layout: StackLayout, data: dict[str, list[rows.Row]]) -> int:
    total = 0
    conn = mariadb_connect(layout.mariadb_admin, DATABASE)
    try:
        with conn.cursor() as cur:
            # store.manager_staff_id and staff.store_id reference each other.
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            for table in ORDER:
                cur.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                    (DATABASE, table),
                )
                present = [r[0] for r in cur.fetchall()]
                columns = [c for c in present if c in data[table][0]]
                stmt = "INSERT INTO {} ({}) VALUES ({})".format(
                    mysql_ident(table),
                    ", ".join(mysql_ident(c) for c in columns),
                    ", ".join(["%s"] * len(columns)),
                )
                cur.executemany(
                    stmt, [tuple(_mysql_value(r[c]) for c in columns) for r in data[table]]
                )
                total += len(data[table])
            cur.execute("SET FOREIGN_KEY_CHECKS = 1")
        conn.commit()
    finally:
        conn.close()
    return total


def load(layout: StackLayout, datasets: Path, progress: Callable[[str], object]) -> list[str]:
    """Create and fill `sakila` unless a previous load completed; returns its tables."""
    if mariadbserver.row_count(layout, DATABASE, MARKER_TABLE) > 0:
        progress(f"sample sakila-mysql: database {DATABASE} already loaded")
    else:
        schema = dataset_file(datasets, DIR, "mysql-sakila-schema.sql").read_text()
        mariadbserver.run_script(layout, schema)  # it drops and creates schema `sakila`
        count = _insert(layout, rows.generate(2))
        progress(f"sample sakila-mysql: created schema, inserted {count} generated rows")
    return mariadbserver.tables(layout, DATABASE)
