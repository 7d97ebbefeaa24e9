"""`bench catchup`'s stage timers and report, without a stack (the command runs in integration)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdchub.bench_catchup import CatchupResult, CatchupTimers, PeerResult, Split


def test_split_puts_main_thread_time_on_poll_and_the_apply_rest_on_park() -> None:
    timers = CatchupTimers()
    timers.batch_s, timers.decode_s, timers.merge_s = 6.0, 2.0, 3.0
    # Main thread: 10 s = 2 s decoding + 1.5 s waiting for the apply thread + 6.5 s polling;
    # apply thread: 6 s, of which 3 s merging tables.
    assert timers.split(10.0, 1.5) == Split(poll=6.5, decode=2.0, park=3.0, merge=3.0, wait=1.5)


def test_report_lines_and_json_carry_every_figure() -> None:
    result = CatchupResult(
        warehouse="duckdb",
        transaction_consistent=True,
        events=1000,
        snapshot_rows=600,
        transactions=80,
        kafka_records=1010,
        kafka_bytes=8_000_000,
        fill_seconds=1.0,
        produce_seconds=2.0,
        applied_events=1000,
        batches=2,
        seconds=0.5,
        events_per_s=2000.0,
        peak_rss_mb=300.0,
        rss_before_run_mb=150.0,
        split=Split(0.1, 0.1, 0.1, 0.2),
        forced_releases=0,
        verify_ok=True,
        verify_failures=[],
        load_before="1.0 1.0 1.0",
        load_after="1.0 1.0 1.0",
        peer=PeerResult(1.0, 1000.0, True),
        speedup_over_peer=2.0,
        warehouse_settings={"memory_limit": "192MB", "checkpoint_threshold": "64MB"},
    )
    text = result.describe()
    assert "2,000 events/s" in text and "2.00x" in text and "verify       OK" in text
    assert "under memory_limit 192MB, checkpoint_threshold 64MB" in text
    doc = json.loads(json.dumps(result.to_json()))
    assert doc["split"]["merge"] == 0.2 and doc["peer"]["equal"] is True
    assert doc["warehouse_settings"]["memory_limit"] == "192MB"


def test_the_bench_reports_the_duckdb_settings_a_run_gets_by_default(tmp_path: Path) -> None:
    from cdchub.bench_catchup import _warehouse_settings, _write_config

    assert _warehouse_settings(_write_config(tmp_path, "duckdb")) == {
        "memory_limit": "192MB",
        "checkpoint_threshold": "64MB",
    }


def test_the_run_is_timed_to_the_commit_of_the_backlogs_last_event() -> None:
    """A commit after the backlog is applied stores only offsets of records produced meanwhile
    (heartbeat transactions' markers): it is the settled time, not the run's time."""
    from cdchub.bench_catchup import CommitClock

    clock = CommitClock(expected=1000)
    clock.commit(0, at=1.0, cpu=0.5)  # offsets only, before any event
    clock.commit(300, at=2.0, cpu=1.5)
    clock.commit(700, at=3.0, cpu=2.5)  # the backlog's last event
    clock.commit(0, at=4.5, cpu=2.6)  # a heartbeat transaction's markers
    assert (clock.complete_at, clock.complete_cpu, clock.last_at) == (3.0, 2.5, 4.5)
    assert clock.applied == 1000
    # A run that never applies the whole backlog is timed to its last commit that applied events.
    short = CommitClock(expected=1000)
    short.commit(400, at=2.0, cpu=1.0)
    short.commit(0, at=3.0, cpu=1.1)
    assert (short.complete_at, short.last_at) == (2.0, 3.0)


def test_the_bench_waits_for_a_quiet_machine_but_not_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Right after the fill the stack's JVMs still work; the run is timed once the machine is
    quiet, and a machine that never settles is timed anyway after the limit."""
    from cdchub import bench_catchup as bench

    clock = [0.0]
    busy = [0.0]
    # Cores busy in each successive 2 s window: the stack settles in the third.
    rates = iter([0.9, 0.4, 0.05])

    def sleep(seconds: float) -> None:
        clock[0] += seconds
        busy[0] += next(rates) * seconds

    monkeypatch.setattr(bench.time, "sleep", sleep)
    monkeypatch.setattr(bench.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(bench, "_busy_cpu_s", lambda: busy[0])
    said: list[str] = []
    waited, cores = bench._wait_settled(said.append)
    assert (waited, cores) == (6.0, pytest.approx(0.05))
    assert "settled" in said[-1]

    rates = iter([0.9] * 100)
    clock[0] = 0.0
    waited, cores = bench._wait_settled(said.append)
    assert waited >= bench.SETTLE_LIMIT_S and cores == pytest.approx(0.9)
    assert "still busy" in said[-1]
