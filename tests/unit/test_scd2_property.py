"""Property test: random change streams, delivered with duplicates, reordering and replays, end in
the same history as the reference model (tests/unit/scd2_reference.py), on DuckDB and on Snowflake
as emulated by fakesnow. PostgreSQL runs the same case in tests/integration/test_postgres_warehouse.py.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scd2_cases import check_history_matches_reference
from tests.unit.warehouses import duckdb_session, snowflake_session

_counter = itertools.count()
_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


@settings(max_examples=25, **_SETTINGS)
@given(seed=st.integers(0, 10_000), length=st.integers(1, 40))
def test_history_matches_reference_model_duckdb(tmp_path: Path, seed: int, length: int) -> None:
    with duckdb_session(tmp_path / f"w{next(_counter)}") as session:
        check_history_matches_reference(session, seed, length)


# fakesnow translates every statement through sqlglot, ~0.5 s per example: fewer examples.
@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=10, **_SETTINGS)
@given(seed=st.integers(0, 10_000), length=st.integers(1, 40))
def test_history_matches_reference_model_snowflake(tmp_path: Path, seed: int, length: int) -> None:
    with snowflake_session(tmp_path / f"w{next(_counter)}") as session:
        check_history_matches_reference(session, seed, length)
