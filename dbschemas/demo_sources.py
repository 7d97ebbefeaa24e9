"""Recognise a demo source, open an admin (application) connection to its server, seed it once.

The demo databases are reached as the stack's admin user, never as the source's (read-only) CDC user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import psycopg
import pymysql
import pymysql.cursors

from core.config import SourceConfig
from core.errors import StackError
from dbschemas import Progress
from infrastructure.stack.layout import Credentials, StackLayout

DemoName = Literal["shop", "inventory"]


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


def _login(creds: Credentials) -> dict[str, Any]:
    """The connection arguments both drivers spell alike."""
    return {
        "host": creds.host,
        "port": creds.port,
        "user": creds.user,
        "password": creds.password(),
        "connect_timeout": 10,
    }


@contextmanager
def _connecting(
    server: str, creds: Credentials, database: str | None, errors: tuple[type[Exception], ...]
) -> Iterator[None]:
    """A failed login or an unreachable server becomes one StackError saying where."""
    try:
        yield
    except errors as exc:
        raise StackError(
            f"cannot connect to {server}: {exc}".strip(),
            host=creds.host,
            port=creds.port,
            user=creds.user,
            database=database,
        ) from exc


def pg_connect(creds: Credentials, dbname: str, *, autocommit: bool = False) -> psycopg.Connection:
    """A psycopg connection as `creds` to `dbname`; connection failures become StackError."""
    with _connecting("PostgreSQL", creds, dbname, (psycopg.OperationalError, OSError)):
        return psycopg.connect(
            **_login(creds), dbname=dbname, autocommit=autocommit, application_name="cdchub-demo"
        )


def mariadb_connect(creds: Credentials, database: str | None) -> pymysql.connections.Connection:
    """A PyMySQL connection as `creds` (UTC session, utf8mb4, explicit transactions).

    PyMySQL does not set CLIENT.FOUND_ROWS, so `cursor.rowcount` after an UPDATE counts rows that
    really changed -- exactly the rows that reach the binlog.
    """
    with _connecting("MariaDB", creds, database, (pymysql.err.OperationalError, OSError)):
        return pymysql.connect(
            **_login(creds),
            database=database,
            charset="utf8mb4",
            autocommit=False,
            # TIMESTAMP columns convert through the session zone; UTC keeps values as written.
            init_command="SET time_zone = '+00:00'",
        )


def source_connection(
    layout: StackLayout, source: SourceConfig
) -> psycopg.Connection | pymysql.connections.Connection:
    """An admin (application) connection to the demo database of `source`, not autocommit."""
    creds = admin_credentials(layout, source)
    if source.kind == "postgres":
        return pg_connect(creds, source.database)
    return mariadb_connect(creds, source.database)


def seed_if_empty(
    where: str,
    counts: dict[str, int],
    seed: Callable[[], dict[str, int]],
    commit: Callable[[], None],
    progress: Progress,
) -> None:
    """Seed a demo database only while all its tables are empty, so a re-run never doubles data.

    `counts` are the rows each table holds; `seed` writes the rows and returns how many per table.
    """
    if any(counts.values()):
        progress(f"demo: {where}: tables hold data, not seeding")
        return
    seeded = seed()
    commit()
    summary = ", ".join(f"{n} {t}" for t, n in seeded.items())
    progress(f"demo: {where}: seeded {summary}")


def mysql_ident(name: str) -> str:
    """A back-quoted MySQL identifier."""
    return "`" + name.replace("`", "``") + "`"
