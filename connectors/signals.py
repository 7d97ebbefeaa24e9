"""The Debezium signaling table (source channel) and notification topic of a source.

`cdchub backfill` asks a connector for an incremental snapshot by inserting an `execute-snapshot`
row into the source's signaling table; Debezium reads it from the log like any change. During the
snapshot Debezium itself inserts window markers into the same table, so the CDC user needs INSERT
on it. Progress comes back as notifications on a Kafka topic (`notification.enabled.channels=sink`);
the notification id is the signal's id.

Names: PostgreSQL `public.cdchub_signal` (a bare `signal_table` lives in `public`), MariaDB/MySQL
`<database>.cdchub_signal`. All SQL is built with sqlglot, identifiers quoted.
"""

from __future__ import annotations

import json
from typing import Any

from sqlglot import exp

from core.config import SourceConfig

NOTIFICATION_TOPIC_PREFIX = "__debezium-notification"


def _dialect(source: SourceConfig) -> str:
    return "postgres" if source.kind == "postgres" else "mysql"


def signal_table(source: SourceConfig) -> tuple[str, str] | None:
    """(namespace, table) of the source's signaling table; None when signaling is off."""
    if not source.signal_table:
        return None
    if "." in source.signal_table:
        namespace, table = source.signal_table.split(".", 1)
        return namespace, table
    return ("public" if source.kind == "postgres" else source.database), source.signal_table


def signal_collection(source: SourceConfig) -> str | None:
    """Debezium's `signal.data.collection`: `<schema>.<table>` or `<database>.<table>`."""
    found = signal_table(source)
    return ".".join(found) if found else None


def notification_topic(source: SourceConfig) -> str:
    """Where Debezium sends the source's notifications (not a data topic: no `<name>.` prefix)."""
    return f"{NOTIFICATION_TOPIC_PREFIX}.{source.name}"


def _table(source: SourceConfig) -> exp.Table:
    namespace, table = signal_table(source) or ("", "")
    return exp.table_(table, db=namespace, quoted=True)


def _render(source: SourceConfig, expression: exp.Expression) -> str:
    return expression.sql(dialect=_dialect(source), identify=True)


def qualified_name(source: SourceConfig) -> str:
    """The signaling table's quoted, qualified name."""
    return _render(source, _table(source))


def create_statement(source: SourceConfig) -> str:
    """`CREATE TABLE IF NOT EXISTS` with the three columns Debezium expects (id, type, data)."""
    create = exp.Create(
        this=exp.Schema(
            this=_table(source),
            expressions=[
                exp.ColumnDef(
                    this=exp.to_identifier("id"),
                    kind=exp.DataType.build("VARCHAR(64)"),
                    constraints=[exp.ColumnConstraint(kind=exp.PrimaryKeyColumnConstraint())],
                ),
                exp.ColumnDef(
                    this=exp.to_identifier("type"),
                    kind=exp.DataType.build("VARCHAR(32)"),
                    constraints=[exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())],
                ),
                exp.ColumnDef(
                    this=exp.to_identifier("data"), kind=exp.DataType.build("VARCHAR(2048)")
                ),
            ],
        ),
        kind="TABLE",
        exists=True,
    )
    return _render(source, create)


def admin_statements(source: SourceConfig) -> list[str]:
    """What an admin runs once so `cdchub backfill` can signal the connector."""
    table = qualified_name(source)
    statements = [create_statement(source) + ";"]
    if source.kind == "postgres":
        user = _render(source, exp.to_identifier(source.user))
        publication = _render(source, exp.to_identifier(source.publication))
        statements += [
            f"GRANT SELECT, INSERT, DELETE ON {table} TO {user};",
            f"ALTER PUBLICATION {publication} ADD TABLE {table};",
        ]
    else:
        statements.append(
            f"GRANT SELECT, INSERT, DELETE ON {table} TO {mysql_account(source.user)};"
        )
    return statements


def mysql_account(user: str) -> str:
    """`'user'@'%'`, the quote doubled inside the name."""
    return "'" + user.replace("'", "''") + "'@'%'"


def insert_signal(source: SourceConfig, signal_id: str, kind: str, data: dict[str, Any]) -> str:
    """`INSERT INTO <signal table> (id, type, data) VALUES (…)`, values as literals."""
    statement = exp.insert(
        exp.Values(
            expressions=[
                exp.Tuple(
                    expressions=[
                        exp.Literal.string(signal_id),
                        exp.Literal.string(kind),
                        exp.Literal.string(json.dumps(data)),
                    ]
                )
            ]
        ),
        _table(source),
        columns=[exp.to_identifier(c) for c in ("id", "type", "data")],
    )
    return _render(source, statement)


def snapshot_signal(collection: str, condition: str | None) -> dict[str, Any]:
    """The `data` of an incremental `execute-snapshot` signal for one table."""
    data: dict[str, Any] = {"data-collections": [collection], "type": "incremental"}
    if condition:
        data["additional-conditions"] = [{"data-collection": collection, "filter": condition}]
    return data
