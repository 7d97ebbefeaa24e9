"""`cdchub schema accept`: let a table stopped by an incompatible type change flow again.

The engine judges a type change against the source type recorded for each warehouse column
(`_cdchub.columns`). After the operator has altered the warehouse columns by hand to a type that holds
both the old and the new values, accepting forgets those records; the next run learns the columns'
types from the events again and applies the held changes.
"""

from __future__ import annotations

from merge import plan
from merge.naming import META_PREFIX
from merge.session import WarehouseSession
from ops.catalog import ReplicatedTable
from ops.history import find_table


def accept_schema(session: WarehouseSession, name: str) -> ReplicatedTable:
    """Forget the recorded column types of one replicated table (see the module docstring).

    Raises:
        ConfigError: no replicated table has that name.
    """
    table = find_table(session, name)
    columns = session.table_columns(table.warehouse_schema, table.history_table) or []
    names = [c for c in columns if not c.startswith(META_PREFIX)]
    if names:
        with session.transaction():
            session.execute(
                plan.delete_column_types(table.warehouse_schema, table.history_table, names)
            )
    return table
