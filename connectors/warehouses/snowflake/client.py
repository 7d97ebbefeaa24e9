"""The Snowflake warehouse client: snowflake-connector-python, `executemany` into a temporary stage.

Bulk path: one `INSERT INTO _cdc_stage … VALUES (?, …)` with `executemany`. With the `qmark`
paramstyle the connector sends all rows as one array-bound request, and above
`CLIENT_STAGE_ARRAY_BINDING_THRESHOLD` it uploads them to a temporary internal stage and loads them
server-side, so a batch is never one statement per row. `write_pandas` was not chosen: it needs
pandas, infers column types from the frame (decimals and timestamps lose their declared type), and
creates its own tables with its own SQL, which the house rule (clients only bind parameters) forbids.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import snowflake.connector
from sqlglot import exp

from connectors.warehouses.nesting import NestedTransaction, begin_commit
from connectors.warehouses.snowflake.dialect import SnowflakeDialect
from connectors.warehouses.snowflake.values import bind_value, with_column
from connectors.warehouses.values import falls_back_to_text
from core.config import SnowflakeWarehouse
from core.errors import MergeError, UnrepresentableValue
from core.model import ColumnType
from merge import client_sql, ddl, sqltree

_DDL = (exp.Create, exp.Drop, exp.Alter)


class SnowflakeSession:
    """A WarehouseSession on one Snowflake database and schema."""

    @classmethod
    def from_config(
        cls, config: SnowflakeWarehouse, *, read_only: bool = False
    ) -> SnowflakeSession:
        """A session on the configured Snowflake database (read-only is the role's business)."""
        return cls(config)

    def __init__(self, config: SnowflakeWarehouse) -> None:
        self.dialect = SnowflakeDialect()
        try:
            self.conn = snowflake.connector.connect(
                account=config.account,
                user=config.user,
                password=config.secret(),
                database=config.database,
                schema=config.schema_,
                warehouse=config.compute_warehouse,
                role=config.role,
                # qmark: server-side (array) binding, the bulk path of executemany.
                paramstyle="qmark",
                autocommit=True,
                session_parameters={"TIMEZONE": "UTC"},
            )
        except snowflake.connector.errors.Error as exc:
            raise MergeError(f"cannot connect to Snowflake: {exc}", account=config.account) from exc
        self._nesting = NestedTransaction()

    def _run(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Any:
        cur = self.conn.cursor()
        cur.execute(sql, params)
        return cur

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN … COMMIT, rolled back on error; nested blocks join the outer transaction.

        The engine creates each table's stage and key tables before the batch's transaction
        (`merge.scratch.PersistentPerTable`), so a batch runs only DML and commits, offsets included,
        as one.
        """
        render = self.dialect.render
        with self._nesting.block(
            lambda: begin_commit(
                self._run, render(exp.Transaction()), render(exp.Commit()), render(exp.Rollback())
            )
        ):
            yield

    def execute(self, statement: exp.Expression, params: dict[str, Any] | None = None) -> None:
        """Run one statement rendered in the Snowflake dialect.

        DDL inside a transaction is run the way Snowflake runs it: the open transaction commits, the
        DDL runs on its own, and a new transaction begins. Doing it explicitly makes emulators with
        transactional DDL (fakesnow on DuckDB) behave like the real service.
        """
        sql = self.dialect.render(statement)
        if self._nesting.open and isinstance(statement, _DDL):
            self._run(self.dialect.render(exp.Commit()))
            self._run(sql, params or None)
            self._run(self.dialect.render(exp.Transaction()))
            return
        self._run(sql, params or None)

    def execute_all(self, statements: Sequence[exp.Expression]) -> None:
        """Run statements in order, one at a time (DDL among them commits as `execute` does)."""
        for statement in statements:
            self.execute(statement)

    def executemany(self, statement: exp.Expression, rows: Sequence[Sequence[Any]]) -> None:
        """Run a parameterised statement for all rows as one array-bound request."""
        if rows:
            self.conn.cursor().executemany(self.dialect.render(statement), [list(r) for r in rows])

    def query(self, statement: exp.Expression | str) -> list[tuple[Any, ...]]:
        """Fetch all rows of a query (a sqlglot tree, or SQL text typed by a user)."""
        sql = statement if isinstance(statement, str) else self.dialect.render(statement)
        return [tuple(r) for r in self._run(sql).fetchall()]

    def read(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows of a user's read-only query (`cdchub sql`)."""
        cursor = self._run(sql)
        names = [d[0] for d in cursor.description or ()]
        return names, [tuple(r) for r in cursor.fetchall()]

    def load_stage(
        self,
        name: str,
        columns: Sequence[tuple[str, ColumnType]],
        rows: Sequence[Sequence[Any]],
        *,
        create: bool = True,
    ) -> None:
        """Create the stage when `create` (the engine does it before the batch's transaction:
        `merge.scratch.PersistentPerTable`), then load every row with one `executemany`."""
        *ddl, insert = self.stage_sql(name, columns, create)
        for statement in ddl:
            self.execute(statement)
        if not rows:
            return
        shapes = [(t, falls_back_to_text(t, self.dialect)) for _, t in columns]
        try:
            bound = [
                [bind_value(v, t, f) for v, (t, f) in zip(row, shapes, strict=True)] for row in rows
            ]
        except UnrepresentableValue as exc:
            raise with_column(exc, columns, rows) from None
        self.executemany(insert, bound)

    @staticmethod
    def stage_sql(
        name: str, columns: Sequence[tuple[str, ColumnType]], create: bool = True
    ) -> list[exp.Expression]:
        """The staging statements: a typed temp table (when `create`), then one array-bound
        `INSERT … VALUES`."""
        create_stage = [
            ddl.create_table(sqltree.table(name), columns, SnowflakeDialect(), temporary=True)
        ]
        return [
            *(create_stage if create else []),
            sqltree.insert_rows(sqltree.table(name), [c for c, _ in columns]),
        ]

    def table_columns(self, schema: str, table: str) -> list[str] | None:
        """Column names of `schema.table` in order, or None."""
        rows = self.query(client_sql.table_columns(schema, table))
        return [r[0] for r in rows] or None

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back by the server)."""
        self.conn.close()
