"""The PostgreSQL heartbeat table that Debezium's `heartbeat.action.query` writes to.

Why: a replication slot advances only when Debezium acknowledges an LSN, and it acknowledges only
LSNs of changes it received. When the captured tables are idle but the server is not, WAL piles up
behind the slot. Every heartbeat, Debezium runs the action query (an upsert of one row per source),
which writes WAL in the captured database; the table is in the publication, so the change reaches
Debezium, is filtered out (it is never captured) and its LSN is acknowledged. Observed: PostgreSQL
heartbeats then arrive every `heartbeat_interval_ms` while the source is idle.

MariaDB/MySQL get no action query: their binlog position needs no slot, and an upsert does not make
the MariaDB connector's heartbeats more frequent (observed every ~48-57 s when idle with a 10 s
interval, with or without it; docs/facts.md).

All SQL here is built with sqlglot and rendered for PostgreSQL, identifiers quoted.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from core.config import SourceConfig


def heartbeat_table(source: SourceConfig) -> tuple[str, str] | None:
    """(schema, table) of a PostgreSQL source's heartbeat table; None when off or not PostgreSQL.

    A bare name lives in `public`.
    """
    if source.kind != "postgres" or not source.heartbeat_table:
        return None
    if "." in source.heartbeat_table:
        schema, table = source.heartbeat_table.split(".", 1)
        return schema, table
    return "public", source.heartbeat_table


def _table(source: SourceConfig) -> exp.Table:
    namespace, table = heartbeat_table(source) or ("", "")
    return exp.table_(table, db=namespace, quoted=True)


def _render(source: SourceConfig, expression: exp.Expression) -> str:
    return expression.sql(dialect="postgres", identify=True)


def qualified_name(source: SourceConfig) -> str:
    """The heartbeat table's quoted, schema-qualified name."""
    return _render(source, _table(source))


def action_query(source: SourceConfig) -> str:
    """`INSERT … ON CONFLICT (source) DO UPDATE SET beat_at = excluded.beat_at`: one row per source."""
    statement = exp.insert(
        exp.Values(
            expressions=[
                exp.Tuple(expressions=[exp.Literal.string(source.name), exp.CurrentTimestamp()])
            ]
        ),
        _table(source),
        columns=[exp.to_identifier("source"), exp.to_identifier("beat_at")],
    )
    statement.set(
        "conflict",
        exp.OnConflict(
            conflict_keys=[exp.to_identifier("source")],
            action=exp.var("DO UPDATE"),
            expressions=[
                exp.EQ(
                    this=exp.column("beat_at"),
                    expression=exp.column("beat_at", table="excluded"),
                )
            ],
        ),
    )
    return _render(source, statement)


def create_statement(source: SourceConfig) -> str:
    """`CREATE TABLE IF NOT EXISTS` of the heartbeat table (run by an admin)."""
    create = exp.Create(
        this=exp.Schema(
            this=_table(source),
            expressions=[
                exp.ColumnDef(
                    this=exp.to_identifier("source"),
                    kind=exp.DataType.build("TEXT"),
                    constraints=[exp.ColumnConstraint(kind=exp.PrimaryKeyColumnConstraint())],
                ),
                exp.ColumnDef(
                    this=exp.to_identifier("beat_at"),
                    kind=exp.DataType.build("TIMESTAMPTZ"),
                    constraints=[exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())],
                ),
            ],
        ),
        kind="TABLE",
        exists=True,
    )
    return _render(source, create)


def admin_statements(source: SourceConfig) -> list[str]:
    """What an admin runs once so the action query can work (table, grants, publication)."""
    table = qualified_name(source)
    user = _render(source, exp.to_identifier(source.user))
    publication = _render(source, exp.to_identifier(source.publication))
    return [
        create_statement(source) + ";",
        f"GRANT SELECT, INSERT, UPDATE ON {table} TO {user};",
        f"ALTER PUBLICATION {publication} ADD TABLE {table};",
    ]


def check(conn: Any, source: SourceConfig) -> str | None:
    """The admin's statements when the heartbeat table is not ready, None when it is.

    Read-only on purpose: an upsert here would be captured by a connector still running with an
    older config (one that captures every table).
    """
    found = heartbeat_table(source)
    if found is None:
        return None
    qualified = qualified_name(source)
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL AND has_table_privilege(%s, 'INSERT') "
        "AND has_table_privilege(%s, 'UPDATE') "
        "AND EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = %s "
        "AND schemaname = %s AND tablename = %s)",
        (qualified, qualified, qualified, source.publication, *found),
    ).fetchone()
    if row and row[0]:
        return None
    return " ".join(admin_statements(source))
