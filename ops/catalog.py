"""The registry of replicated tables, read from the warehouse's control schema."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from sqlglot import exp

from merge import client_sql, control, sqltree
from merge.naming import CONTROL_SCHEMA, TableNames
from merge.session import QuerySession, WarehouseSession


@dataclass(frozen=True)
class ReplicatedTable:
    """One source table and where it lives in the warehouse (`cdchub tables --json`)."""

    source: str
    kind: str
    source_database: str
    source_schema: str
    source_table: str
    warehouse_schema: str
    current_table: str
    history_table: str
    key_columns: list[str]

    @property
    def names(self) -> TableNames:
        return TableNames(self.warehouse_schema, self.current_table, self.history_table)

    def to_json(self) -> dict[str, object]:
        """The JSON object printed by `cdchub tables --json`."""
        return asdict(self)


def replicated_tables(session: QuerySession) -> list[ReplicatedTable]:
    """Every table the hub has created, ordered by source and table name."""
    if session.table_columns(CONTROL_SCHEMA, control.TABLES) is None:
        return []
    columns = [
        "source",
        "source_kind",
        "source_database",
        "source_schema",
        "source_table",
        "warehouse_schema",
        "current_table",
        "history_table",
        "key_columns",
    ]
    query = (
        exp.select(*(sqltree.col(c) for c in columns))
        .from_(control.control_table(control.TABLES))
        .order_by(sqltree.col("source"), sqltree.col("source_schema"), sqltree.col("source_table"))
    )
    seen: set[tuple[str, str, str]] = set()
    tables = []
    for row in session.query(query):
        ident = (row[0], row[3], row[4])
        if ident in seen:
            continue
        seen.add(ident)
        source, kind, database, schema, table, wh_schema, current, history = row[:8]
        tables.append(
            ReplicatedTable(
                source,
                kind,
                database,
                schema,
                table,
                wh_schema,
                current,
                history,
                key_columns=json.loads(row[8]),
            )
        )
    return tables


def warehouse_types(session: WarehouseSession, schema: str, table: str) -> dict[str, str]:
    """Column name -> type of a warehouse table."""
    query = client_sql.column_types(schema, table)
    return {str(name): str(kind) for name, kind in session.query(query)}
