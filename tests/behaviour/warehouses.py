"""The `warehouse` a behaviour test runs on: its kind and a way to open a fresh, empty session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from merge.session import WarehouseSession


@dataclass(frozen=True)
class Warehouse:
    """A warehouse under test.

    `fresh(path)` opens a session on an empty warehouse (a new DuckDB file, a new fakesnow database,
    the PostgreSQL warehouse database with the test schemas dropped); `path` is a scratch directory.
    """

    kind: str
    fresh: Callable[[Path], AbstractContextManager[WarehouseSession]]


def unit_warehouses() -> list[Warehouse]:
    """The warehouses unit tests reach without servers: DuckDB and Snowflake emulated by fakesnow."""
    from tests.unit.warehouses import duckdb_session, snowflake_session

    return [Warehouse("duckdb", duckdb_session), Warehouse("snowflake", snowflake_session)]


def postgres_warehouse(config: object, schemas: tuple[str, ...]) -> Warehouse:
    """The PostgreSQL warehouse of the integration stack; `schemas` are dropped before each use."""
    from connectors.warehouses.postgres.client import PostgresSession
    from merge import client_sql
    from merge.naming import CONTROL_SCHEMA

    @contextmanager
    def fresh(path: Path) -> Iterator[WarehouseSession]:
        session = PostgresSession(config)  # type: ignore[arg-type]
        try:
            for name in (*schemas, CONTROL_SCHEMA):
                session.execute(client_sql.drop_schema(name))
            yield session
        finally:
            session.close()

    return Warehouse("postgres", fresh)
