"""A failure in the middle of a batch leaves neither its data nor its offsets (DuckDB, fakesnow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.exactly_once_cases import (
    check_failure_leaves_nothing,
    check_two_tables_fail_together,
    is_offsets_write,
    is_relink,
)
from tests.unit.warehouses import duckdb_session, snowflake_session

OPENERS = {"duckdb": duckdb_session, "snowflake": snowflake_session}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", sorted(OPENERS))
@pytest.mark.parametrize("fails", [is_relink, is_offsets_write], ids=["relink", "offsets"])
def test_failure_mid_batch_leaves_neither_data_nor_offsets(
    kind: str, fails: object, tmp_path: Path
) -> None:
    with OPENERS[kind](tmp_path / "w") as session:
        check_failure_leaves_nothing(session, fails)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_batch_of_two_tables_commits_both_or_neither(kind: str, tmp_path: Path) -> None:
    with OPENERS[kind](tmp_path / "w") as session:
        check_two_tables_fail_together(session)
