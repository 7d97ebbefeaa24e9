"""Read-only access to source databases (for `verify`): connect, list columns, read whole tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pymysql
from psycopg import sql
from psycopg.types.string import TextLoader
from sqlglot import exp

from cdchub.config import SourceConfig
from connectors.heartbeat import heartbeat_table


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
            options="-c TimeZone=UTC",
        )
        # Read json/jsonb as text: psycopg would parse the JSON document `null` into Python None,
        # indistinguishable from SQL NULL.
        for name in ("json", "jsonb"):
            conn.adapters.register_loader(name, TextLoader)
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
        query = sql.SQL("SELECT * FROM {}.{}").format(
            sql.Identifier(namespace), sql.Identifier(table)
        )
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
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


def list_tables(conn: Any, source: SourceConfig) -> list[tuple[str, str]]:
    """(namespace, table) of every base table the source captures: its `tables`, or all of them
    but the heartbeat table (written by Debezium, never captured)."""
    if source.tables:
        return [tuple(t.split(".", 1)) for t in source.tables]  # type: ignore[misc]
    return [t for t in _all_tables(conn, source) if t != heartbeat_table(source)]


def _all_tables(conn: Any, source: SourceConfig) -> list[tuple[str, str]]:
    if source.kind == "postgres":
        rows = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        return [(r[0], r[1]) for r in rows]
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema = %s",
            (source.database,),
        )
        return [(r[0], r[1]) for r in cur.fetchall()]
