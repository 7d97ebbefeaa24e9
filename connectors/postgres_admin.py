"""Preparing a PostgreSQL source for Debezium, as its admin: the one copy of each step.

The demo loader (`dbschemas/postgres_shop.py`) and the sample databases (`dbschemas/samples/pgserver.py`)
both prepare databases the same way: create the database, grant the CDC user read access, create the
heartbeat and signaling tables Debezium writes to, and create or reset the publication. Every
function takes an open admin connection (psycopg 3) and leaves committing to the caller, so a caller
can prepare a database in one transaction. Identifiers are composed with `psycopg.sql`, never by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import psycopg
from psycopg import sql

from connectors import signals
from connectors.heartbeat import create_statement, heartbeat_table
from core.config import SourceConfig

# Schemas PostgreSQL keeps for itself; no user table lives there.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


def create_database(conn: psycopg.Connection, dbname: str) -> bool:
    """CREATE DATABASE unless it exists (on an autocommit connection); True when it was created."""
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
        return False
    row = conn.execute(
        "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'template1'"
    ).fetchone()
    stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
    if not row or row[0] != "UTF8":
        # A cluster initialised with a non-UTF8 locale: UTF8 needs template0 and the C locale.
        stmt = stmt + sql.SQL(" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
    conn.execute(stmt)
    return True


def publishable_tables(conn: psycopg.Connection) -> list[tuple[str, str, bool]]:
    """(schema, table, has_primary_key) of every table logical replication can publish, sorted.

    Partitions are left out: the publication publishes them through their root
    (`publish_via_partition_root`), so they arrive as the partitioned table.
    """
    rows = conn.execute(
        "SELECT n.nspname, c.relname, EXISTS (SELECT 1 FROM pg_constraint k "
        "  WHERE k.conrelid = c.oid AND k.contype = 'p') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_%%' ORDER BY 1, 2",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    return [(r[0], r[1], bool(r[2])) for r in rows]


def grant_read(
    conn: psycopg.Connection, dbname: str, cdc_user: str, schemas: Iterable[str]
) -> None:
    """Let the CDC user connect and read every table of `schemas`, tables created later included."""
    user = sql.Identifier(cdc_user)
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(dbname), user))
    for name in sorted(set(schemas)):
        schema = sql.Identifier(name)
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, user))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, user))
        # Tables the admin adds later are readable too, without preparing the database again.
        conn.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(
                schema, user
            )
        )


def create_heartbeat_table(
    conn: psycopg.Connection, source: SourceConfig, cdc_user: str
) -> tuple[str, str] | None:
    """The table Debezium's heartbeat action query upserts (connectors/heartbeat.py), granted to the
    CDC user; its (schema, table), or None when the source has none."""
    found = heartbeat_table(source)
    if found is None:
        return None
    conn.execute(create_statement(source).encode())
    conn.execute(
        sql.SQL("GRANT SELECT, INSERT, UPDATE ON {} TO {}").format(
            sql.Identifier(*found), sql.Identifier(cdc_user)
        )
    )
    return found


def create_signal_table(
    conn: psycopg.Connection, source: SourceConfig, cdc_user: str
) -> tuple[str, str] | None:
    """The Debezium signaling table `cdchub backfill` writes to (connectors/signals.py), granted to
    the CDC user; its (schema, table), or None when the source has none."""
    found = signals.signal_table(source)
    if found is None:
        return None
    conn.execute(signals.create_statement(source).encode())
    conn.execute(
        sql.SQL("GRANT SELECT, INSERT, DELETE ON {} TO {}").format(
            sql.Identifier(*found), sql.Identifier(cdc_user)
        )
    )
    return found


def publish(conn: psycopg.Connection, publication: str, tables: Sequence[tuple[str, str]]) -> str:
    """Create `publication` for `tables`, or reset its table list; returns what was done.

    `publish_via_partition_root` makes a partitioned table's changes arrive under the root's name.
    """
    name = sql.Identifier(publication)
    table_list = sql.SQL(", ").join(sql.Identifier(s, t) for s, t in tables)
    exists = conn.execute(
        "SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,)
    ).fetchone()
    if exists:
        conn.execute(sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(name, table_list))
        conn.execute(
            sql.SQL("ALTER PUBLICATION {} SET (publish_via_partition_root = true)").format(name)
        )
        return f"publication {publication} updated ({len(tables)} tables)"
    conn.execute(
        sql.SQL(
            "CREATE PUBLICATION {} FOR TABLE {} WITH (publish_via_partition_root = true)"
        ).format(name, table_list)
    )
    return f"publication {publication} created ({len(tables)} tables)"
