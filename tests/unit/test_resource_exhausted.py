"""A warehouse out of memory or disk stops the run; it is no table's fault and loses nothing.

DuckDB runs under `warehouse.memory_limit` (192 MB by default): past it, work DuckDB cannot spill
fails with `OutOfMemoryException`. That must not dead-letter a table (the data is fine) nor commit
anything: the run stops with the setting to change, and a run with more memory applies it all.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

import connectors.failures  # noqa: F401  (registers the drivers' classifiers)
from connectors.warehouses.duckdb.client import DuckDBSession
from connectors.warehouses.duckdb.errors import DuckDBOutOfMemory
from connectors.warehouses.postgres.errors import PostgresExhausted
from core.errors import ResourceExhausted
from core.failures import classify
from tests.unit.test_runner_liveness import Workload, _config, _current, _runner


def _workload() -> Workload:
    w = Workload()
    for n in range(1500):
        w.transaction([("orders", n, "paid" * 50), ("customers", n, f"c{n}" * 50)])
    return w


def _dead_letters(session: DuckDBSession) -> int:
    row = session.conn.execute('SELECT count(*) FROM "_cdchub"."dead_letters"').fetchone()
    return int(row[0]) if row else 0


def test_out_of_memory_stops_the_run_without_a_dead_letter_and_loses_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wh.duckdb"
    w = _workload()
    session = DuckDBSession(path, memory_limit="6MB")
    try:
        runner = _runner(_config(path, batch_max_events=20000), session, w.stream)
        with pytest.raises(DuckDBOutOfMemory) as err:
            runner.run(until_idle=0.5, max_seconds=60, handle_signals=False)
        assert "warehouse.memory_limit" in str(err.value)
        assert "offsets=" in str(err.value)
        assert _dead_letters(session) == 0
    finally:
        session.close()
    # The same stream, a warehouse with DuckDB's memory: every row, nothing dead-lettered.
    session = DuckDBSession(path)
    try:
        result = _runner(_config(path, batch_max_events=20000), session, w.stream).run(
            until_idle=0.5, max_seconds=60, handle_signals=False
        )
        assert result.stopped_by == "idle"
        assert len(_current(session)) == 3000
        assert _dead_letters(session) == 0
    finally:
        session.close()


def test_postgres_out_of_disk_or_memory_is_exhaustion_not_a_table_error() -> None:
    assert classify(psycopg.errors.DiskFull("no space")) is PostgresExhausted
    assert classify(psycopg.errors.OutOfMemory("oom")) is PostgresExhausted
    assert issubclass(PostgresExhausted, ResourceExhausted)
    # Too many connections passes with time: retried, not a stop.
    assert not issubclass(classify(psycopg.errors.TooManyConnections("x")), ResourceExhausted)
