"""A failure in the middle of a batch leaves neither its data nor its offsets (DuckDB, fakesnow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.exactly_once_cases import (
    check_failure_leaves_nothing,
    check_retryable_failure_is_retried_once,
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


def _duckdb_conflict(message: str) -> BaseException:
    import duckdb

    return duckdb.TransactionException(f"TransactionContext Error: Conflict on update ({message})")


def _snowflake_network(message: str) -> BaseException:
    from snowflake.connector.errors import OperationalError

    return OperationalError(msg=f"connection reset ({message})", errno=250001)


RETRYABLE = {"duckdb": _duckdb_conflict, "snowflake": _snowflake_network}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", sorted(OPENERS))
@pytest.mark.parametrize("fails", [is_relink, is_offsets_write], ids=["relink", "offsets"])
def test_a_retryable_failure_mid_batch_is_retried_and_applied_once(
    kind: str, fails: object, tmp_path: Path
) -> None:
    with OPENERS[kind](tmp_path / "w") as session:
        check_retryable_failure_is_retried_once(session, fails, RETRYABLE[kind])


def test_a_retryable_failure_that_persists_stops_with_the_batch_context(tmp_path: Path) -> None:
    from cdchub.errors import MergeError
    from merge.scd2 import Checkpoint, Scd2Engine
    from tests.exactly_once_cases import FailingSession, _events
    from tests.scd2_cases import INFO, TABLE

    with duckdb_session(tmp_path / "w") as session:
        failing = FailingSession(session, is_relink, error=_duckdb_conflict)
        engine = Scd2Engine(failing, "g")  # type: ignore[arg-type]
        failing.armed = True
        with pytest.raises(MergeError, match=r"retries exhausted.*offsets=topic\[0\]@2") as raised:
            engine.apply({TABLE: _events(0, 2)}, INFO, [Checkpoint("topic", 0, 2)])
        assert failing.fired == 5  # bounded
        assert "tables=src.public.items" in str(raised.value)
        assert Scd2Engine(session, "g").stored_checkpoints() == {}
