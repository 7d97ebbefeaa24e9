"""`cdchub schema accept`: let a table stopped by an incompatible type change flow again.

The engine judges a type change against the source type recorded for each warehouse column
(`_cdchub.columns`). The run that stopped the table recorded the stop (`_cdchub.stopped_tables`) with
the column and the new source type. Accepting checks that the stop exists and that the operator has
altered the warehouse column (history and current table) to a type that holds the new values; then it
forgets the recorded types and the stop, and the next run learns the columns' types from the events
again and applies the held changes.
"""

from __future__ import annotations

from core.errors import ConfigError
from core.model import ColumnType
from merge import control
from merge.dialect import Dialect
from merge.evolution import Change, evolve
from merge.naming import META_PREFIX
from merge.runstate import clear_stop, stopped_tables
from merge.schema_sync import column_type_from_json
from merge.session import WarehouseSession
from ops.catalog import ReplicatedTable, warehouse_types
from ops.history import find_table


def _canonical(dialect: Dialect, type_sql: str) -> str:
    rendered = dialect.render(dialect.build(type_sql))
    # An unbounded VARCHAR is the text type on every warehouse cdchub writes to.
    return "TEXT" if rendered in ("VARCHAR", "STRING") else rendered


def _same(dialect: Dialect, a: str, b: str) -> bool:
    return _canonical(dialect, a) == _canonical(dialect, b)


def holds(dialect: Dialect, warehouse_type: str, new: ColumnType) -> bool:
    """Whether a warehouse column of type `warehouse_type` holds every value of source type `new`.

    The type the engine would create for `new` holds it, and so does any type the engine would keep
    for a source type that `new` narrows (e.g. BIGINT for int32). A text column does not hold a
    non-text type: that is the unaltered column of a text → number change.
    """
    needed = dialect.render(dialect.column_type(new))
    if _same(dialect, warehouse_type, needed):
        return True
    text = dialect.render(dialect.column_type(ColumnType("string")))
    if _same(dialect, warehouse_type, text):
        return False
    candidates = [ColumnType(kind) for kind in dialect.TYPES]
    parsed = dialect.build(warehouse_type)
    if parsed.is_type("decimal") and len(parsed.expressions) == 2:
        precision, scale = (int(e.this.this) for e in parsed.expressions)
        candidates.append(ColumnType("decimal", precision=precision, scale=scale))
    for candidate in candidates:
        if not _same(dialect, dialect.render(dialect.column_type(candidate)), warehouse_type):
            continue
        if evolve(candidate, new, dialect).change in (Change.SAME, Change.KEEP):
            return True
    return False


def accept_schema(session: WarehouseSession, name: str, consumer_group: str) -> ReplicatedTable:
    """Resume one stopped table (see the module docstring).

    Raises:
        ConfigError: no replicated table has that name, it is not stopped, or its warehouse column
            does not hold the new type yet.
    """
    table = find_table(session, name)
    stop = next(
        (
            s
            for s in stopped_tables(session, consumer_group)
            if (s.source, s.source_schema, s.source_table)
            == (table.source, table.source_schema, table.source_table)
        ),
        None,
    )
    if stop is None:
        raise ConfigError(
            f"{name} is not stopped, so there is nothing to accept (`cdchub lag` shows stopped "
            "tables)",
            table=name,
            consumer_group=consumer_group,
        )
    if stop.new_type_json:
        new = column_type_from_json(stop.new_type_json)
        for tbl in (table.history_table, table.current_table):
            actual = warehouse_types(session, table.warehouse_schema, tbl).get(stop.column)
            if actual is None or not holds(session.dialect, actual, new):
                example = session.dialect.render(session.dialect.column_type(new))
                raise ConfigError(
                    f"the warehouse column {table.warehouse_schema}.{tbl}.{stop.column} is "
                    f"{actual or 'missing'}, which does not hold the held values' type "
                    f"{stop.new_type}; alter it (history and current table) to e.g. {example} "
                    "first, then accept again",
                    table=name,
                )
    columns = session.table_columns(table.warehouse_schema, table.history_table) or []
    names = [c for c in columns if not c.startswith(META_PREFIX)]
    with session.transaction():
        if names:
            session.execute(
                control.delete_column_types(table.warehouse_schema, table.history_table, names)
            )
        clear_stop(session, consumer_group, table.source, table.source_schema, table.source_table)
    return table
