"""A PostgreSQL warehouse a benchmark may fill and empty: the local stack's, or a consented one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel

from core.config import PostgresWarehouse
from core.errors import ConfigError
from merge.session import WarehouseSession


@contextmanager
def bench_session(
    configured: BaseModel, local: BaseModel | None, *, yes: bool, consent: str
) -> Iterator[WarehouseSession]:
    """A session on the local stack's warehouse database, or on the configured PostgreSQL warehouse
    when it is that database or the user consents (`yes`).

    Raises:
        ConfigError: the configured warehouse is another server and `yes` is not given (before any
            connection is tried).
    """
    from connectors.warehouses.postgres.client import PostgresSession

    # Not configured: the local stack's warehouse database (`cdchub stack up` creates it).
    warehouse = configured if isinstance(configured, PostgresWarehouse) else local
    if not isinstance(warehouse, PostgresWarehouse):
        raise ConfigError("no PostgreSQL warehouse to benchmark: configure one or run the stack")
    is_local = isinstance(local, PostgresWarehouse) and (
        (warehouse.host, warehouse.port, warehouse.database)
        == (local.host, local.port, local.database)
    )
    if not is_local and not yes:
        where = f" ({local.location})" if isinstance(local, PostgresWarehouse) else ""
        raise ConfigError(
            f"bench merge would write into {warehouse.location}, which is not the local stack's "
            f"warehouse{where}; {consent}"
        )
    session = PostgresSession(warehouse)
    try:
        yield session
    finally:
        session.close()
