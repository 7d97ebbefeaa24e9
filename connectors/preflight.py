"""Checks run before a connector is registered, so a misconfigured source fails with instructions
instead of a FAILED task buried in the Connect log."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import psycopg
import pymysql

from connectors import heartbeat
from connectors.sources import list_tables, open_connection
from connectors.warehouses import dialect_for
from core.config import SourceConfig
from core.errors import ConnectorError
from core.model import TableId
from merge.naming import default_namespace, name_notes


def check_source(source: SourceConfig, warehouse_kind: str | None = None) -> list[str]:
    """Connect as the CDC user and check what Debezium will need.

    Returns:
        Notes for the operator: source tables that cannot keep their natural warehouse name in a
        `warehouse_kind` warehouse (two that fold to one name, a name past its length limit).

    Raises:
        ConnectorError: with the exact statement an admin must run, or naming a configured table
            that does not exist.
    """
    try:
        conn = open_connection(source)
    except (psycopg.OperationalError, pymysql.MySQLError) as exc:
        raise ConnectorError(
            f"cannot connect as the CDC user: {str(exc).strip()}", source=source.name
        ) from exc
    with closing(conn):
        _check_tables_exist(conn, source)
        if source.kind == "postgres":
            _check_postgres(conn, source)
            _check_keys_postgres(conn, source)
        else:
            _check_binlog(conn, source)
            _check_keys_binlog(conn, source)
        missing = heartbeat.check(conn, source)
        if missing:
            raise ConnectorError(
                f"the heartbeat table {heartbeat.qualified_name(source)} is not ready (or set "
                f"heartbeat_table: null to do without); as an admin run: {missing}",
                source=source.name,
            )
        if warehouse_kind is None:
            return []
        dialect = dialect_for(warehouse_kind)
        tables = [TableId(source.name, ns, t) for ns, t in list_tables(conn, source)]
        ns = default_namespace(source.kind, source.database)
        return name_notes(tables, ns, dialect.fold, dialect.MAX_IDENTIFIER_LENGTH)


def _existing_tables(conn: Any, source: SourceConfig) -> set[str]:
    """`namespace.table` of every base table the CDC user's connection can see in the database."""
    if source.kind == "postgres":
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')"
        ).fetchall()
        conn.rollback()
        return {r[0] for r in rows}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema = %s",
            (source.database,),
        )
        return {r[0] for r in cur.fetchall()}


def _check_tables_exist(conn: Any, source: SourceConfig) -> None:
    """Every configured table exists: Debezium would accept a missing one and capture nothing."""
    if not source.tables:
        return
    existing = _existing_tables(conn, source)
    missing = [t for t in source.tables if t not in existing]
    if not missing:
        return
    where = "schema.table" if source.kind == "postgres" else f"{source.database}.table"
    lowered = {t.lower(): t for t in existing}
    hints = [f" (did you mean {lowered[t.lower()]}?)" for t in missing if t.lower() in lowered]
    raise ConnectorError(
        f"configured tables not found in database {source.database!r}: {', '.join(missing)}"
        f"{hints[0] if hints else ''}. Fix `tables:` of this source (write each as {where}), or "
        "create the table first",
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
    published = {
        r[0]
        for r in conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = %s",
            (source.publication,),
        ).fetchall()
    }
    unpublished = [t for t in source.tables or [] if t not in published]
    if unpublished:
        # Debezium would snapshot them and then never see a change.
        listed = ", ".join(".".join(f'"{p}"' for p in t.split(".", 1)) for t in unpublished)
        raise ConnectorError(
            f"configured tables not in publication {source.publication!r}: "
            f"{', '.join(unpublished)}; as an admin run: "
            f'ALTER PUBLICATION "{source.publication}" ADD TABLE {listed};',
            source=source.name,
        )


def _keyless_message(source: SourceConfig, tables: list[str]) -> str:
    listed = ", ".join(tables)
    fix = "ALTER TABLE <table> REPLICA IDENTITY FULL; and " if source.kind == "postgres" else ""
    return (
        f"tables without a primary key: {listed}. Add a primary key, or {fix}name the key columns "
        f'in cdchub.yaml under this source: key_columns: {{"{tables[0]}": [<column>, ...]}}'
    )


def _check_keys_postgres(conn: Any, source: SourceConfig) -> None:
    """Published tables need a key: their own, or `key_columns` plus REPLICA IDENTITY FULL."""
    rows = conn.execute(
        "SELECT n.nspname || '.' || c.relname, c.relreplident FROM pg_publication_tables p "
        "JOIN pg_namespace n ON n.nspname = p.schemaname "
        "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename "
        "WHERE p.pubname = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint k "
        "  WHERE k.conrelid = c.oid AND k.contype = 'p') ORDER BY 1",
        (source.publication,),
    ).fetchall()
    wanted = set(source.tables) if source.tables else None
    keyless = [r[0] for r in rows if wanted is None or r[0] in wanted]
    missing = [t for t in keyless if t not in source.key_columns]
    if missing:
        raise ConnectorError(_keyless_message(source, missing), source=source.name)
    not_full = [r[0] for r in rows if r[0] in keyless and r[1] != "f"]
    if not_full:
        raise ConnectorError(
            f"tables with configured key_columns need full before-images: "
            f"ALTER TABLE {not_full[0]} REPLICA IDENTITY FULL; (for each of {', '.join(not_full)})",
            source=source.name,
        )


def _check_keys_binlog(conn: Any, source: SourceConfig) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT CONCAT(t.table_schema, '.', t.table_name) FROM information_schema.tables t "
            "WHERE t.table_schema = %s AND t.table_type = 'BASE TABLE' AND NOT EXISTS ("
            # columns.column_key, not table_constraints: the latter is empty for the CDC user.
            "  SELECT 1 FROM information_schema.columns k WHERE k.table_schema = "
            "  t.table_schema AND k.table_name = t.table_name AND k.column_key = 'PRI')"
            " ORDER BY 1",
            (source.database,),
        )
        keyless = [r[0] for r in cur.fetchall()]
    wanted = set(source.tables) if source.tables else None
    missing = [
        t for t in keyless if (wanted is None or t in wanted) and t not in source.key_columns
    ]
    if missing:
        raise ConnectorError(_keyless_message(source, missing), source=source.name)


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
