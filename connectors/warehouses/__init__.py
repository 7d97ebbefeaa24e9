"""Warehouse clients: they execute what `merge/` builds, and own each warehouse's bulk-load path."""

from __future__ import annotations

from core.config import DuckDBWarehouse, HubConfig, PostgresWarehouse, SnowflakeWarehouse
from merge.session import WarehouseSession


def open_session(config: HubConfig, *, read_only: bool = False) -> WarehouseSession:
    """Open a session on the configured warehouse (drivers are imported only when used)."""
    warehouse = config.warehouse
    if isinstance(warehouse, DuckDBWarehouse):
        from connectors.warehouses.duckdb_client import DuckDBSession

        return DuckDBSession(warehouse.path, read_only=read_only)
    if isinstance(warehouse, PostgresWarehouse):
        from connectors.warehouses.postgres_client import PostgresSession

        return PostgresSession(warehouse, read_only=read_only)
    if isinstance(warehouse, SnowflakeWarehouse):
        from connectors.warehouses.snowflake_client import SnowflakeSession

        return SnowflakeSession(warehouse)
    raise ValueError(f"warehouse kind {warehouse.kind!r} is not supported")
