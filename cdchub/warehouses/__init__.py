"""Warehouse clients: they execute what `merge/` builds, and own each warehouse's bulk-load path."""

from __future__ import annotations

from cdchub.config import HubConfig
from merge.session import WarehouseSession


def open_session(config: HubConfig, *, read_only: bool = False) -> WarehouseSession:
    """Open a session on the configured warehouse."""
    kind = config.warehouse.kind
    if kind == "duckdb":
        from cdchub.warehouses.duckdb_client import DuckDBSession

        return DuckDBSession(config.warehouse.path, read_only=read_only)
    raise ValueError(f"warehouse kind {kind!r} is not supported yet")
