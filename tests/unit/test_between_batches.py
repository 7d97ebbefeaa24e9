"""The scheduled checks are the run's between-batches hook, not part of its telemetry.

`cdchub run` hands the runner `ops.checks.ScheduledChecks`; the runner calls it with its own session
between batches, with or without instrumentation. The runner here has no instrumentation at all
(`NoInstrumentation`) and the real loop runs over an in-memory stream of captured envelopes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc_consumers.runner import Runner
from connectors.warehouses.duckdb.client import DuckDBSession
from core.config import HubConfig
from core.observability_config import ChecksConfig
from merge.session import WarehouseSession
from ops.checks import ScheduledChecks
from tests.configs import hub_config
from tests.memory_stream import MemoryStream
from tests.unit.envelope_records import make_record


def _config(tmp_path: Path, interval: float | None) -> HubConfig:
    return hub_config(tmp_path / "wh.duckdb", checks=ChecksConfig(interval_seconds=interval))


@pytest.fixture
def session(tmp_path: Path) -> Iterator[DuckDBSession]:
    opened = DuckDBSession(tmp_path / "wh.duckdb")
    yield opened
    opened.close()


def test_the_runner_calls_its_hook_with_its_session_between_batches(
    tmp_path: Path, session: DuckDBSession
) -> None:
    config = _config(tmp_path, None)
    stream = MemoryStream()
    calls: list[WarehouseSession] = []
    runner = Runner(
        config,
        session,
        progress=lambda _m: None,
        stream_factory=stream.factory(),
        between_batches=calls.append,
    )
    stream.append_record(make_record("shop.public.orders.c"))
    runner.run(until_idle=0, handle_signals=False)
    assert calls, "the hook was never called"
    assert all(c is runner.session for c in calls)
    assert session.conn.execute("SELECT count(*) FROM shop.orders").fetchone() == (1,)


def test_due_scheduled_checks_store_a_run_without_telemetry(
    tmp_path: Path, session: DuckDBSession
) -> None:
    config = _config(tmp_path, 60)
    now = [0.0]
    checks = ScheduledChecks(config, clock=lambda: now[0])
    stream = MemoryStream()
    runner = Runner(
        config,
        session,
        progress=lambda _m: None,
        stream_factory=stream.factory(),
        between_batches=checks,
    )
    stream.append_record(make_record("shop.public.orders.c"))
    runner.run(until_idle=0, handle_signals=False)
    count_runs = "SELECT count(DISTINCT run_id) FROM _cdchub.checks"
    assert session.conn.execute(count_runs).fetchone() == (0,)  # not due yet
    now[0] = 61.0
    stream.append_record(make_record("shop.public.customers.c"))
    runner.run(until_idle=0, handle_signals=False)
    assert session.conn.execute(count_runs).fetchone() == (1,)


def test_a_failing_check_run_is_logged_and_replication_goes_on(
    tmp_path: Path, session: DuckDBSession, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(tmp_path, 60)
    checks = ScheduledChecks(config, clock=lambda: 1e9)  # always due

    def broken(_session: WarehouseSession) -> None:
        raise RuntimeError("verify exploded")

    checks.maybe_run = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING):
        checks(session)  # does not raise
    assert "scheduled checks could not run: verify exploded" in caplog.text
