"""Read-only access to source databases (for `verify`): connect, list columns, read whole tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
import pymysql
from psycopg import sql
from psycopg.adapt import Loader
from psycopg.types import TypeInfo
from psycopg.types.hstore import register_hstore
from psycopg.types.string import TextLoader
from sqlglot import exp

from connectors import postgres_admin
from connectors.heartbeat import heartbeat_table
from connectors.signals import signal_table
from core.config import SourceConfig


def open_connection(source: SourceConfig) -> Any:
    """A read connection to a source, in UTC so instants compare as instants.

    Raises:
        psycopg.OperationalError | pymysql.MySQLError: the driver's error when the login fails.
    """
    if source.kind == "postgres":
        conn = psycopg.connect(
            host=source.host,
            port=source.port,
            dbname=source.database,
            user=source.user,
            password=source.secret(),
            connect_timeout=10,
            options="-c TimeZone=UTC -c IntervalStyle=iso_8601",
        )
        # Read json/jsonb as text: psycopg would parse the JSON document `null` into Python None,
        # indistinguishable from SQL NULL. Intervals as ISO-8601 text: psycopg's timedelta folds
        # months into 30-day blocks.
        # inet/cidr and ranges as PostgreSQL's text (psycopg makes ipaddress and Range objects);
        # Debezium sends these text forms.
        for name in ("json", "jsonb", "interval", "inet", "cidr", *_RANGES):
            conn.adapters.register_loader(name, TextLoader)
        conn.adapters.register_loader("money", _MoneyLoader)
        hstore = TypeInfo.fetch(conn, "hstore")
        if hstore is not None:  # as a dict, compared with the warehouse's JSON document
            register_hstore(hstore, conn)
        # The lookup opened a transaction; end it so a reader can still choose its isolation level.
        conn.rollback()
        return conn
    return pymysql.connect(
        host=source.host,
        port=source.port,
        user=source.user,
        password=source.secret(),
        database=source.database,
        charset="utf8mb4",
        init_command="SET time_zone = '+00:00'",
        connect_timeout=10,
    )


_RANGES = ("int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange")


class _MoneyLoader(Loader):
    """money as a Decimal: PostgreSQL prints it with the locale's symbol and separators."""

    def load(self, data: Any) -> Decimal:
        text = bytes(data).decode()
        negative = text.startswith("-") or text.startswith("(")
        digits = "".join(ch for ch in text if ch.isdigit() or ch == ".")
        value = Decimal(digits)
        return -value if negative else value


@contextmanager
def connect(source: SourceConfig) -> Iterator[Any]:
    """`open_connection` as a context manager that always closes."""
    conn = open_connection(source)
    try:
        yield conn
    finally:
        conn.close()


def read_table(
    conn: Any, source: SourceConfig, namespace: str, table: str
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """All rows of a source table with its column names (one consistent read)."""
    if source.kind == "postgres":
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute(
                "SELECT c.relkind, array_agg(a.attname ORDER BY a.attnum) FILTER (WHERE "
                "a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_attribute a ON a.attrelid = c.oid "
                "WHERE n.nspname = %s AND c.relname = %s GROUP BY c.relkind",
                (namespace, table),
            )
            relkind, names = cur.fetchone() or ("r", [])
            # Logical replication publishes a table's own rows: ONLY leaves out rows of tables that
            # INHERIT it (they are captured as tables of their own). A partitioned table ('p') has no
            # rows of its own; its partitions are published through it. Generated columns are not
            # published by PostgreSQL < 18 (docs/types.md), so they are not compared.
            query = sql.SQL("SELECT {} FROM {}{}").format(
                sql.SQL(", ").join(map(sql.Identifier, names)),
                sql.SQL("" if relkind == "p" else "ONLY "),
                sql.Identifier(namespace, table),
            )
            cur.execute(query)
            return [d.name for d in cur.description], cur.fetchall()
    with conn.cursor() as cur:
        query_text = (
            exp.select(exp.Star())
            .from_(exp.table_(table, db=namespace, quoted=True))
            .sql(dialect="mysql", identify=True)
        )
        cur.execute(query_text)
        rows = cur.fetchall()
        return [d[0] for d in cur.description], list(rows)


def table_is_empty(conn: Any, source: SourceConfig, namespace: str, table: str) -> bool:
    """True when the source table has no rows (an empty table produces no change events)."""
    _, rows = read_table(conn, source, namespace, table)
    return not rows


def list_tables(conn: Any, source: SourceConfig) -> list[tuple[str, str]]:
    """(namespace, table) of every base table the source captures: its `tables`, or all of them
    but the heartbeat and signaling tables (written for Debezium, never replicated)."""
    if source.tables:
        return [tuple(t.split(".", 1)) for t in source.tables]  # type: ignore[misc]
    skipped = {heartbeat_table(source), signal_table(source)}
    return [t for t in _all_tables(conn, source) if t not in skipped]


def _all_tables(conn: Any, source: SourceConfig) -> list[tuple[str, str]]:
    if source.kind == "postgres":
        # The publishable tables (partitions come via their root); the catalog is readable by all.
        tables = [(s, t) for s, t, _ in postgres_admin.publishable_tables(conn)]
        conn.rollback()  # so a following read_table can open its REPEATABLE READ transaction
        return tables
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema = %s",
            (source.database,),
        )
        return [(r[0], r[1]) for r in cur.fetchall()]
