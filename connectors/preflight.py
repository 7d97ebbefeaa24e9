"""Checks run before a connector is registered, so a misconfigured source fails with instructions
instead of a FAILED task buried in the Connect log."""

from __future__ import annotations

import psycopg
import pymysql

from cdchub.config import SourceConfig
from cdchub.errors import ConnectorError


def check_source(source: SourceConfig) -> None:
    """Connect as the CDC user and check what Debezium will need.

    Raises:
        ConnectorError: with the exact statement an admin must run.
    """
    if source.kind == "postgres":
        _check_postgres(source)
    else:
        _check_binlog(source)


def _check_postgres(source: SourceConfig) -> None:
    try:
        conn = psycopg.connect(
            host=source.host,
            port=source.port,
            dbname=source.database,
            user=source.user,
            password=source.secret(),
            connect_timeout=10,
        )
    except psycopg.OperationalError as exc:
        raise ConnectorError(
            f"cannot connect as the CDC user: {str(exc).strip()}", source=source.name
        ) from exc
    with conn:
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


def _check_binlog(source: SourceConfig) -> None:
    try:
        conn = pymysql.connect(
            host=source.host,
            port=source.port,
            user=source.user,
            password=source.secret(),
            connect_timeout=10,
        )
    except pymysql.MySQLError as exc:
        raise ConnectorError(f"cannot connect as the CDC user: {exc}", source=source.name) from exc
    with conn, conn.cursor() as cur:
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
