"""A DuckDB warehouse a benchmark may fill and empty: a temporary file, never the configured one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

from pydantic import BaseModel

from merge.session import WarehouseSession


@contextmanager
def bench_session(
    configured: BaseModel, local: BaseModel | None, *, yes: bool, consent: str
) -> Iterator[WarehouseSession]:
    """A session on a fresh DuckDB file, removed afterwards.

    The configured file is never used (a running hub may hold it, and a temporary file is the same
    engine), so there is nothing to consent to.
    """
    from connectors.warehouses.duckdb.client import DuckDBSession

    with TemporaryDirectory(prefix="cdchub-bench-") as tmp:
        session = DuckDBSession(Path(tmp) / "warehouse.duckdb")
        try:
            yield session
        finally:
            session.close()
