"""Batch cutting: by events, by bytes, and by the wait only when no backlog is waiting in Kafka."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from connectors.warehouses.duckdb.client import DuckDBSession
from tests.unit.test_runner_liveness import Workload, _config, _current, _runner


def _backlog(transactions: int) -> Workload:
    w = Workload()
    for n in range(transactions):
        w.transaction([("orders", n, "paid"), ("customers", n, f"c{n}")])
    return w


def test_a_backlog_fills_batches_to_their_size_limit_whatever_the_wait(tmp_path: Path) -> None:
    # 150 transactions = 450 records; polls return 25 records and the wait is 0, so without the
    # backlog rule every poll would be its own batch (18 batches).
    w = _backlog(150)
    w.stream.max_per_poll = 25
    session = DuckDBSession(tmp_path / "wh.duckdb")
    try:
        runner = _runner(_config(tmp_path / "wh.duckdb", batch_max_events=100), session, w.stream)
        result = runner.run(until_idle=0.2, max_seconds=60, handle_signals=False)
        assert result.stopped_by == "idle"
        assert len(_current(session)) == 300
    finally:
        session.close()
    # The first batch is cut by the wait (no probe yet); then the probe sees the backlog and
    # batches are 100 records, the last one what is left.
    assert result.batches <= 7, result.batches


def test_batches_are_cut_by_bytes(tmp_path: Path) -> None:
    w = _backlog(60)
    size = sum(
        len(r.value or b"") + len(r.key or b"") for log in w.stream.logs.values() for r in log
    )
    session = DuckDBSession(tmp_path / "wh.duckdb")
    try:
        # A quarter of the records' bytes per batch: four batches or more (polls of 10 records
        # mixing the topics). By events alone (100, a backlog) they would be 10, 100 and 70.
        config = _config(tmp_path / "wh.duckdb", batch_max_events=100)
        config = config.model_copy(
            update={
                # Cut exactly at the limits, even while the batch before is still applying.
                "kafka": config.kafka.model_copy(
                    update={"batch_max_bytes": size // 4, "batch_stretch": 1.0}
                ),
                # Every batch applies what it read (none waits for a transaction's END).
                "sources": [config.sources[0].model_copy(update={"transaction_consistent": False})],
            }
        )
        w.stream.max_per_poll = 10
        runner = _runner(config, session, w.stream)
        result = runner.run(until_idle=0.2, max_seconds=60, handle_signals=False)
        assert len(_current(session)) == 120
    finally:
        session.close()
    assert result.batches >= 4, result.batches


def _batch_sizes(tmp_path: Path, stretch: float) -> list[int]:
    """Events per batch of a 150-transaction backlog read 25 records a poll, 100 records a batch,
    while each batch takes 0.2 s to apply."""
    w = _backlog(150)
    w.stream.max_per_poll = 25
    session = DuckDBSession(tmp_path / f"wh-{stretch}.duckdb")
    sizes: list[int] = []
    try:
        config = _config(tmp_path / f"wh-{stretch}.duckdb", batch_max_events=100)
        config = config.model_copy(
            update={"kafka": config.kafka.model_copy(update={"batch_stretch": stretch})}
        )
        runner = _runner(config, session, w.stream)
        apply = runner._commit

        def slow(job: Any) -> Any:
            time.sleep(0.2)
            return apply(job)

        runner._commit = slow  # type: ignore[method-assign]
        result = runner.run(
            until_idle=0.2,
            max_seconds=60,
            handle_signals=False,
            on_batch=lambda batch: sizes.append(batch.events),
        )
        assert result.stopped_by == "idle"
        assert len(_current(session)) == 300  # nothing lost either way
    finally:
        session.close()
    return sizes


def test_a_full_batch_keeps_reading_while_the_one_before_it_is_applied(tmp_path: Path) -> None:
    # A transaction here is three records (two rows and its END): 100 records are 33 whole ones,
    # 66 events, and one parked at the cut joins the next batch. Stretched to twice the limit
    # while the previous batch is still applying, batches read up to 200 records.
    exact = _batch_sizes(tmp_path, 1.0)
    stretched = _batch_sizes(tmp_path, 2.0)
    assert max(exact) <= 70, exact
    assert max(stretched) > 100, stretched
    assert max(stretched) <= 140, stretched
    assert len(stretched) < len(exact), (stretched, exact)
