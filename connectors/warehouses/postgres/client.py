"""The PostgreSQL warehouse client: psycopg 3, `COPY` into a temporary stage, one transaction per batch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlglot import exp

from connectors.warehouses.nesting import NestedTransaction
from connectors.warehouses.postgres.dialect import PostgresDialect
from connectors.warehouses.postgres.values import copy_value
from connectors.warehouses.values import falls_back_to_text
from core.config import PostgresWarehouse
from core.errors import WarehouseUnavailable
from core.model import ColumnType
from merge import client_sql, ddl, sqltree


class PostgresSession:
    """A WarehouseSession on one PostgreSQL database (autocommit outside explicit transactions)."""

    @classmethod
    def from_config(cls, config: PostgresWarehouse, *, read_only: bool = False) -> PostgresSession:
        """A session on the configured PostgreSQL database."""
        return cls(config, read_only=read_only)

    def __init__(self, config: PostgresWarehouse, *, read_only: bool = False) -> None:
        self.dialect = PostgresDialect()
        self._config = config
        self._read_only = read_only
        self._connect()

    def reconnect(self) -> None:
        """Open a new connection if the current one broke (the engine retries a batch after it)."""
        if self.conn.closed or self.conn.broken:
            self._connect()

    def _connect(self) -> None:
        config, read_only = self._config, self._read_only
        try:
            self.conn = psycopg.connect(
                host=config.host,
                port=config.port,
                dbname=config.database,
                user=config.user,
                password=config.secret(),
                connect_timeout=config.connect_timeout_s,
                autocommit=True,
                # Instants are written and read as UTC, like on every other warehouse.
                options="-c TimeZone=UTC",
            )
        except psycopg.OperationalError as exc:
            raise WarehouseUnavailable(
                f"cannot connect to the PostgreSQL warehouse: {' '.join(str(exc).split())}",
                host=config.host,
                port=str(config.port),
                database=config.database,
            ) from exc
        self.conn.read_only = read_only or None
        # JSON comes back as text, the shape the decoder produced (verify parses both sides).
        for name in ("json", "jsonb"):
            self.conn.adapters.register_loader(name, psycopg.types.string.TextLoader)
        self._nesting = NestedTransaction()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit on success, roll back on error; nested blocks join the outer transaction."""
        with self._nesting.block(self.conn.transaction):
            yield

    def execute(self, statement: exp.Expression, params: dict[str, Any] | None = None) -> None:
        """Run one statement rendered in the PostgreSQL dialect."""
        self.conn.execute(self.dialect.render(statement), params or None)

    def execute_all(self, statements: Sequence[exp.Expression]) -> None:
        """Run statements in order, one at a time (each error names its statement)."""
        for statement in statements:
            self.execute(statement)

    def executemany(self, statement: exp.Expression, rows: Sequence[Sequence[Any]]) -> None:
        """Run a parameterised statement for each row (psycopg pipelines them)."""
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(self.dialect.render(statement), [list(r) for r in rows])

    def query(self, statement: exp.Expression | str) -> list[tuple[Any, ...]]:
        """Fetch all rows of a query (a sqlglot tree, or SQL text typed by a user)."""
        sql = statement if isinstance(statement, str) else self.dialect.render(statement)
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []

    def read(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of a user's read-only query (`cdchub sql`).

        Run in a transaction of its own, so a session opened `read_only` begins it `READ ONLY`.
        """
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(sql)
            if not cur.description:
                return [], []
            return [d.name for d in cur.description], cur.fetchall()

    def load_stage(
        self,
        name: str,
        columns: Sequence[tuple[str, ColumnType]],
        rows: Sequence[Sequence[Any]],
        *,
        create: bool = True,
    ) -> None:
        """Create the temporary stage (unless it exists), then stream every row through one
        `COPY … FROM STDIN`."""
        *ddl, copy_from = self.stage_sql(name, columns, create)
        for statement in ddl:
            self.execute(statement)
        if not rows:
            return
        copy_sql = self.dialect.render(copy_from)
        shapes = [(t, falls_back_to_text(t, self.dialect)) for _, t in columns]
        with self.conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row([copy_value(v, t, f) for v, (t, f) in zip(row, shapes, strict=True)])

    @staticmethod
    def stage_sql(
        name: str, columns: Sequence[tuple[str, ColumnType]], create: bool = True
    ) -> list[exp.Expression]:
        """The staging statements: a typed temp table (when `create`), then `COPY … FROM STDIN`."""
        create_stage = [
            ddl.create_table(sqltree.table(name), columns, PostgresDialect(), temporary=True)
        ]
        return [
            *(create_stage if create else []),
            client_sql.copy_from_stdin(name, [c for c, _ in columns]),
        ]

    def table_columns(self, schema: str, table: str) -> list[str] | None:
        """Column names of `schema.table` in order, or None."""
        rows = self.query(client_sql.table_columns(schema, table))
        return [r[0] for r in rows] or None

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        self.conn.close()
