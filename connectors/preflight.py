"""Checks run before a connector is registered, so a misconfigured source fails with instructions
instead of a FAILED task buried in the Connect log."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import psycopg
import pymysql

from cdchub.config import SourceConfig
from cdchub.errors import ConnectorError
from cdchub.sources import open_connection
from connectors import heartbeat


def check_source(source: SourceConfig) -> None:
    """Connect as the CDC user and check what Debezium will need.

    Raises:
        ConnectorError: with the exact statement an admin must run.
    """
    try:
        conn = open_connection(source)
    except (psycopg.OperationalError, pymysql.MySQLError) as exc:
        raise ConnectorError(
            f"cannot connect as the CDC user: {str(exc).strip()}", source=source.name
        ) from exc
    with closing(conn):
        if source.kind == "postgres":
            _check_postgres(conn, source)
        else:
            _check_binlog(conn, source)
        missing = heartbeat.check(conn, source)
        if missing:
            raise ConnectorError(
                f"the heartbeat table {heartbeat.qualified_name(source)} is not ready (or set "
                f"heartbeat_table: null to do without); as an admin run: {missing}",
                source=source.name,
            )


def _check_postgres(conn: Any, source: SourceConfig) -> None:
    level = conn.execute("SHOW wal_level").fetchone()
    if not level or level[0] != "logical":
        raise ConnectorError(
            "wal_level must be 'logical' (ALTER SYSTEM SET wal_level = logical; then restart)",
            source=source.name,
        )
    row = conn.execute(
        "SELECT rolreplication FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if not row or not row[0]:
        raise ConnectorError(
            f'the CDC user needs REPLICATION: ALTER ROLE "{source.user}" REPLICATION;',
            source=source.name,
        )
    pub = conn.execute(
        "SELECT 1 FROM pg_publication WHERE pubname = %s", (source.publication,)
    ).fetchone()
    if pub is None:
        tables = ", ".join(source.tables or []) or "<your tables>"
        raise ConnectorError(
            f"publication {source.publication!r} does not exist; as an admin run: "
            f'CREATE PUBLICATION "{source.publication}" FOR TABLE {tables} '
            "WITH (publish_via_partition_root = true);",
            source=source.name,
        )


def _check_binlog(conn: Any, source: SourceConfig) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.log_bin, @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image")
        log_bin, fmt, image = cur.fetchone()
        if str(log_bin) not in ("1", "ON"):
            raise ConnectorError(
                "the binary log is off: start the server with --log-bin", source=source.name
            )
        if str(fmt).upper() != "ROW" or str(image).upper() != "FULL":
            raise ConnectorError(
                f"binlog_format={fmt}, binlog_row_image={image}; Debezium needs ROW and FULL "
                "(SET GLOBAL binlog_format = 'ROW'; SET GLOBAL binlog_row_image = 'FULL';)",
                source=source.name,
            )
