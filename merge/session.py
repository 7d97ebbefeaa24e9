"""The small contract a warehouse client must satisfy for the merge engine to drive it.

`merge/` builds SQL and never opens a connection; clients (`connectors/warehouses/`) implement this
Protocol and never build SQL beyond binding parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlglot import exp

from core.model import ColumnType
from merge.dialect import Dialect


class QuerySession(Protocol):
    """What a reader of the warehouse needs: the dialect, queries and the catalog.

    A `WarehouseSession` is one; so are read-only readers (a cursor beside a running writer, a
    running hub's query endpoint).
    """

    @property
    def dialect(self) -> Dialect:
        """How this warehouse's SQL is rendered (read-only, so a client may narrow its type)."""
        ...

    def query(self, statement: exp.Expression) -> list[tuple[Any, ...]]:
        """Run a query and fetch all rows."""
        ...

    def table_columns(self, schema: str, table: str) -> list[str] | None:
        """Column names of an existing table, in order; None when it does not exist."""
        ...


class WarehouseSession(QuerySession, Protocol):
    """One open connection to a warehouse."""

    def transaction(self) -> AbstractContextManager[None]:
        """A block that commits on success and rolls back on error."""
        ...

    def execute(self, statement: exp.Expression, params: dict[str, Any] | None = None) -> None:
        """Run one statement (named placeholders bound from `params`)."""
        ...

    def execute_all(self, statements: Sequence[exp.Expression]) -> None:
        """Run statements (no parameters) in order, as one request where the warehouse allows it."""
        ...

    def executemany(self, statement: exp.Expression, rows: Sequence[Sequence[Any]]) -> None:
        """Run one parameterised statement for many rows (small control writes only)."""
        ...

    def load_stage(
        self,
        name: str,
        columns: Sequence[tuple[str, ColumnType]],
        rows: Sequence[Sequence[Any]],
        *,
        create: bool = True,
    ) -> None:
        """Bulk-load `rows` into table `name`: created first as a temporary table with `columns` when
        `create`, else it exists (and is empty) already (`merge.scratch.PersistentPerTable`)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def iter_chunks(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Slices of at most `size` rows (bulk paths bound their memory with it)."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
