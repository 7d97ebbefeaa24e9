"""Warehouse sessions for unit tests: a DuckDB file, and Snowflake emulated by fakesnow (on DuckDB)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fakesnow

from connectors.warehouses.duckdb.client import DuckDBSession
from connectors.warehouses.snowflake.client import SnowflakeSession
from core.config import SnowflakeWarehouse


@contextmanager
def duckdb_session(path: Path) -> Iterator[DuckDBSession]:
    """A session on a fresh DuckDB file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    session = DuckDBSession(path.with_suffix(".duckdb"))
    try:
        yield session
    finally:
        session.close()


def fake_snowflake_config(database: str = "cdchub") -> SnowflakeWarehouse:
    """A Snowflake config; fakesnow ignores the account and password."""
    return SnowflakeWarehouse.model_validate(
        {
            "kind": "snowflake",
            "account": "fake",
            "user": "cdchub",
            "password": "unused",
            "database": database,
            "schema": "public",
        }
    )


@contextmanager
def snowflake_session(path: Path) -> Iterator[SnowflakeSession]:
    """A SnowflakeSession on fakesnow: a fresh in-memory DuckDB behind the Snowflake connector."""
    with fakesnow.patch():
        session = SnowflakeSession(fake_snowflake_config())
        try:
            yield session
        finally:
            session.close()
