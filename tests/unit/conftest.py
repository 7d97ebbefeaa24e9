"""Fixtures the unit tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.warehouses.duckdb.client import DuckDBSession


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[DuckDBSession]:
    """An open session on a fresh DuckDB file `<tmp_path>/wh.duckdb` (closed afterwards).

    Modules that run on several warehouses (test_behaviour, test_sql_over_history) define their
    own `warehouse`, which takes precedence there.
    """
    session = DuckDBSession(tmp_path / "wh.duckdb")
    yield session
    session.close()
