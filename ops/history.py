"""History analytics: the rows a replicated table held at an instant (`cdchub asof`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.errors import ConfigError
from merge.asof import as_of
from merge.naming import META_PREFIX
from merge.session import WarehouseSession
from ops.catalog import ReplicatedTable, replicated_tables


def find_table(session: WarehouseSession, name: str) -> ReplicatedTable:
    """A replicated table by `<source>.<table>`, `<source>.<namespace>.<table>` or warehouse name.

    Raises:
        ConfigError: no replicated table has that name; the message lists the known ones.
    """
    tables = replicated_tables(session)
    for t in tables:
        spellings = {
            f"{t.source}.{t.source_table}",
            f"{t.source}.{t.source_schema}.{t.source_table}",
            f"{t.warehouse_schema}.{t.current_table}",
        }
        if name in spellings:
            return t
    known = ", ".join(f"{t.warehouse_schema}.{t.current_table}" for t in tables) or "none yet"
    raise ConfigError(f"no replicated table {name!r}; known tables: {known}", table=name)


def source_columns(session: WarehouseSession, table: ReplicatedTable) -> list[str]:
    """The source columns the warehouse holds for `table` (metadata columns left out)."""
    columns = session.table_columns(table.warehouse_schema, table.current_table) or []
    return [c for c in columns if not c.startswith(META_PREFIX)]


def rows_as_of(
    session: WarehouseSession, table: ReplicatedTable, at: dt.datetime
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns and rows `table` held at `at`, ordered by key (from its history table)."""
    columns = source_columns(session, table)
    query = as_of(table.names, columns, at, order_by=table.key_columns)
    return columns, session.query(query)


def parse_instant(text: str, option: str = "--at") -> dt.datetime:
    """An instant typed by a user: ISO 8601 (a trailing `Z` is UTC; no zone means UTC) or `now`.

    Raises:
        ConfigError: neither.
    """
    if text.strip().lower() == "now":
        return dt.datetime.now(dt.UTC)
    try:
        instant = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            f"{option} {text!r} is not an instant: write ISO 8601 such as 2026-11-25T18:00:00Z, "
            "or now"
        ) from exc
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)
