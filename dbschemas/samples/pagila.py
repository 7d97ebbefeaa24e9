"""Pagila (PostgreSQL, schema only) on the local PostgreSQL as database `pagila`, with generated rows.

The dump targets PostgreSQL 18 with pgvector; the stack runs PostgreSQL 15, so `adapt` rewrites three
things and nothing else: `uuidv7()` defaults become `gen_random_uuid()`, the VIRTUAL generated column
becomes STORED (15 has no virtual columns), and `vector(20)` becomes `real[]` (no pgvector). Rows come
from `rows.generate` (deterministic, FK-consistent). The partitioned `payment` table is published with
`publish_via_partition_root`, so its partitions arrive as one table.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psycopg import sql

from dbschemas.demo_sources import pg_connect
from dbschemas.samples import pgserver, rows
from dbschemas.samples.datasets import dataset_file
from infrastructure.stack.layout import StackLayout

DATABASE = "pagila"
DIR = "pagila"
PUBLICATION = "cdchub_pagila"
MARKER_TABLE = "public.payment"
ORDER = ["language", "category", "country", "city", "address", "actor", "store", "staff", "film",
         "film_actor", "film_category", "film_embedding", "customer", "inventory", "rental",
         "payment"]  # fmt: skip


def adapt(script: str) -> str:
    """The dump, made loadable on PostgreSQL 15 without pgvector (see the module docstring)."""
    script = script.replace("uuidv7()", "gen_random_uuid()")
    script = re.sub(r"\) VIRTUAL", ") STORED", script)
    script = re.sub(r"^CREATE EXTENSION IF NOT EXISTS vector .*\n", "", script, flags=re.MULTILINE)
    script = re.sub(r"^COMMENT ON EXTENSION vector .*\n", "", script, flags=re.MULTILINE)
    script = script.replace("public.vector(20)", "real[]")
    script = re.sub(r"^CREATE INDEX .* USING (hnsw|ivfflat) .*\n", "", script, flags=re.MULTILINE)
    script = re.sub(r"^ALTER [A-Z ]+ .* OWNER TO postgres;\n", "", script, flags=re.MULTILINE)
    return re.sub(r"^(GRANT|REVOKE) .* (TO|FROM) (postgres|PUBLIC);\n", "", script,
                  flags=re.MULTILINE)  # fmt: skip


def pagila_rows(seed: int = 1) -> dict[str, list[rows.Row]]:
    """Generated rows in Pagila's column names."""
    data = rows.generate(seed)
    rng = random.Random(seed + 1)
    for customer in data["customer"]:
        customer["activebool"] = customer["active"]
        customer["active"] = int(customer["active"])
    data["film_embedding"] = [
        {"film_id": f["film_id"], "embedding": [round(rng.uniform(-1, 1), 6) for _ in range(20)],
         "last_update": f["last_update"]}
        for f in data["film"] if f["film_id"] % 3
    ]  # fmt: skip
    return data


def _insert(layout: StackLayout, data: dict[str, list[rows.Row]]) -> int:
    total = 0
    with pg_connect(layout.pg_admin, DATABASE) as conn:
        for table in ORDER:
            present = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                    "'public' AND table_name = %s AND is_generated = 'NEVER' "
                    "AND column_name <> 'fulltext'",  # set by the dump's trigger
                    (table,),
                ).fetchall()
            ]
            table_rows = data[table]
            columns = [c for c in present if c in table_rows[0]]
            stmt = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier("public", table),
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.Placeholder() * len(columns)),
            )
            values: list[tuple[Any, ...]] = [tuple(r[c] for c in columns) for r in table_rows]
            with conn.cursor() as cur:
                cur.executemany(stmt, values)
            total += len(values)
        # Sequences continue after the generated ids, so inserts by the workload get fresh keys.
        for table in ORDER:
            first = data[table][0]
            key = next(iter(first))
            seq = conn.execute(
                "SELECT pg_get_serial_sequence(%s, %s)", (f"public.{table}", key)
            ).fetchone()
            if seq and seq[0]:
                conn.execute(
                    sql.SQL("SELECT setval(%s, (SELECT max({}) FROM {}))").format(
                        sql.Identifier(key), sql.Identifier("public", table)
                    ),
                    (seq[0],),
                )
        conn.commit()
    return total


def load(layout: StackLayout, datasets: Path, progress: Callable[[str], object]) -> list[str]:
    """Create and fill `pagila` unless a previous load completed; returns the published tables."""
    if pgserver.database_exists(layout, DATABASE) and pgserver.row_count(
        layout, DATABASE, MARKER_TABLE
    ):
        progress(f"sample pagila: database {DATABASE} already loaded")
    else:
        schema = dataset_file(datasets, DIR, "pagila-schema.sql").read_text()
        pgserver.recreate_database(layout, DATABASE)
        pgserver.run_script(layout, DATABASE, adapt(schema))
        count = _insert(layout, pagila_rows())
        progress(f"sample pagila: created schema, inserted {count} generated rows")
    return pgserver.grant_and_publish(layout, DATABASE, PUBLICATION)
