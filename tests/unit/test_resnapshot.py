"""A backfill's re-read rows write history only where they differ (DuckDB and fakesnow; PostgreSQL
runs the same case in tests/integration/test_postgres_warehouse.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scd2_cases import check_resnapshot_writes_only_drift
from tests.unit.warehouses import duckdb_session, snowflake_session

OPENERS = {"duckdb": duckdb_session, "snowflake": snowflake_session}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_resnapshot_writes_only_drift(kind: str, tmp_path: Path) -> None:
    with OPENERS[kind](tmp_path / "w") as session:
        check_resnapshot_writes_only_drift(session)
