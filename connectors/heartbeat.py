"""The PostgreSQL heartbeat table that Debezium's `heartbeat.action.query` writes to.

Why: a replication slot only advances when Debezium acknowledges an LSN, and it acknowledges only
LSNs of changes it received. When the captured tables are idle but the server is not, WAL piles up
behind the slot. Every heartbeat, Debezium runs the action query (an upsert of one row per source),
which writes WAL in the captured database; the table is in the publication, so the change reaches
Debezium, is filtered out (it is not in `table.include.list`) and its LSN is acknowledged.

All SQL here is built with sqlglot and rendered for PostgreSQL with every identifier quoted.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from cdchub.config import SourceConfig

DIALECT = "postgres"


def heartbeat_table(source: SourceConfig) -> tuple[str, str] | None:
    """(schema, table) of the source's heartbeat table, None when not used (non-PostgreSQL/off)."""
    if source.kind != "postgres" or not source.heartbeat_table:
        return None
    schema, table = source.heartbeat_table.split(".", 1)
    return schema, table


def _table(source: SourceConfig) -> exp.Table:
    schema, table = heartbeat_table(source) or ("", "")
    return exp.table_(table, db=schema, quoted=True)


def _render(expression: exp.Expression) -> str:
    return expression.sql(dialect=DIALECT, identify=True)


def action_query(source: SourceConfig) -> str:
    """`INSERT … ON CONFLICT (source) DO UPDATE SET beat_at = now()`: one row per source."""
    statement = exp.insert(
        exp.Values(
            expressions=[
                exp.Tuple(expressions=[exp.Literal.string(source.name), exp.CurrentTimestamp()])
            ]
        ),
        exp.Schema(
            this=_table(source),
            expressions=[exp.to_identifier("source"), exp.to_identifier("beat_at")],
        ),
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
    return _render(statement)


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
    return _render(create)


def admin_statements(source: SourceConfig) -> list[str]:
    """What an admin runs once so the action query can work (table, grants, publication)."""
    table = _render(_table(source))
    user = _render(exp.to_identifier(source.user))
    publication = _render(exp.to_identifier(source.publication))
    return [
        create_statement(source) + ";",
        f"GRANT SELECT, INSERT, UPDATE ON {table} TO {user};",
        f"ALTER PUBLICATION {publication} ADD TABLE {table};",
    ]


def check(conn: Any, source: SourceConfig) -> str | None:
    """What is missing for the heartbeat action query, as the admin's statements; None when ready."""
    found = heartbeat_table(source)
    if found is None:
        return None
    schema, table = found
    qualified = _render(_table(source))
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()
    ready = bool(row and row[0])
    if ready:
        row = conn.execute(
            "SELECT has_table_privilege(%s, 'INSERT') AND has_table_privilege(%s, 'UPDATE') "
            "AND EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = %s "
            "AND schemaname = %s AND tablename = %s)",
            (qualified, qualified, source.publication, schema, table),
        ).fetchone()
        ready = bool(row and row[0])
    if ready:
        return None
    return " ".join(admin_statements(source))
