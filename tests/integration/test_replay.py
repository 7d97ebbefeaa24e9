"""`cdchub replay` on the real stack, run as a user runs it (the CLI, a config file).

- a replay of a whole topic changes no history row (every event is already present);
- after deleting a range of history rows, a replay restores exactly those rows;
- the range options: `--from-time/--to-time` split the topic where Kafka's own timestamps say
  (read independently here), `--from-offset/--to-offset` are inclusive; two complementary ranges
  restore between them exactly the deleted rows;
- while `cdchub run` holds the DuckDB warehouse, the replay is handed to it and still applies;
- on a PostgreSQL warehouse too: while `cdchub run` holds the lease, the replay is handed to it
  (the single writer) and a replay of the whole topic changes no history row; so is a rebuild.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
from kafka import KafkaConsumer, TopicPartition

from core.config import HubConfig
from dbschemas.workload import run_workload
from ops.access import QueryTicket
from tests.integration.conftest import Stack
from tests.integration.helpers import (
    duckdb_config_file,
    failures,
    histories,
    pg_history,
    pg_warehouse_config_file,
    replicate_until_verified,
    verify,
    wait_for_own_ticket,
)

CLI = [sys.executable, "-m", "cdchub.cli"]


def _start_run(path: Path, config: HubConfig) -> tuple[subprocess.Popen[str], Path]:
    """`cdchub run` in the background, once it serves its endpoint (stopped if it never does);
    its query ticket."""
    run = subprocess.Popen(
        [*CLI, "--config", str(path), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ticket = wait_for_own_ticket(
            run,
            config,
            60,
            lambda: run.stderr.read() if run.stderr and run.poll() is not None else "",
        )
    except BaseException:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
        raise
    return run, ticket


def _cdchub(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--config", str(config), *args], capture_output=True, text=True, timeout=600
    )


def _replay(config: Path, *args: str) -> dict[str, Any]:
    done = _cdchub(config, "replay", "--table", "shop.orders", "--json", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    report: dict[str, Any] = json.loads(done.stdout)
    _check_bar(done.stderr, "replay shop.orders", report)
    return report


def _check_bar(stderr: str, label: str, report: dict[str, Any]) -> None:
    """Off a terminal the bar is plain lines: none for a plan; distinct ones, the last one the count."""
    lines = [line for line in stderr.splitlines() if line.startswith(f"{label}: ")]
    if report["summary"] is None:
        assert lines == [], stderr
        return
    assert (
        lines and lines[-1] == f"{label}: {report['summary']['records']}/{report['plan']['events']}"
    )
    assert len(lines) == len(set(lines)), lines


def test_replay_changes_nothing_then_restores_deleted_history(stack: Stack, tmp_path: Path) -> None:
    path, config = duckdb_config_file(stack, tmp_path, "replay")
    assert replicate_until_verified(config)["ok"]
    before = histories(config.warehouse.path)["shop.orders_history"]

    plan = _replay(path)  # without --execute: the plan only
    assert plan["summary"] is None and plan["plan"]["events"] > 0
    assert histories(config.warehouse.path)["shop.orders_history"] == before

    whole = _replay(path, "--execute")
    assert whole["summary"]["applied"] == 0
    assert whole["summary"]["already_present"] == whole["summary"]["events"] > 0
    assert histories(config.warehouse.path)["shop.orders_history"] == before

    # Delete a range of versions (a slice of positions), then replay: exactly those come back.
    conn = duckdb.connect(str(config.warehouse.path))
    try:
        positions = sorted(
            r[0] for r in conn.execute("SELECT _cdc_source_pos FROM shop.orders_history").fetchall()
        )
        low, high = positions[len(positions) // 3], positions[len(positions) // 2]
        deleted = conn.execute(
            "DELETE FROM shop.orders_history WHERE _cdc_source_pos BETWEEN ? AND ?", [low, high]
        ).fetchone()[0]
    finally:
        conn.close()
    assert deleted > 0
    restored = _replay(path, "--execute")
    assert restored["summary"]["applied"] == deleted
    assert histories(config.warehouse.path)["shop.orders_history"] == before


def _timestamps(bootstrap: str, topic: str, start: int, end: int) -> list[int]:
    """Kafka's timestamp (ms) of each record of partition 0 of `topic` in [start, end)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, start)
        found: dict[int, int] = {}
        deadline = time.monotonic() + 60
        while len(found) < end - start and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                found.update({r.offset: r.timestamp for r in records if r.offset < end})
    finally:
        consumer.close()
    assert sorted(found) == list(range(start, end))
    return [found[o] for o in range(start, end)]


def test_replay_of_two_ranges_restores_what_each_holds(stack: Stack, tmp_path: Path) -> None:
    path, config = duckdb_config_file(stack, tmp_path, "replay_ranges")
    # Stream changes behind the snapshot, so the topic spans distinct Kafka timestamps.
    run_workload(
        stack.layout, list(config.sources), rate=50, duration=None, events=300, seed=7,
        progress=lambda _m: None,
    )  # fmt: skip
    assert replicate_until_verified(config)["ok"]
    before = histories(config.warehouse.path)["shop.orders_history"]
    [whole] = _replay(path)["plan"]["ranges"]  # one partition
    first, end = whole["start"], whole["end"]
    stamps = _timestamps(config.kafka.bootstrap_servers, whole["topic"], first, end)

    # The oracle for --from/--to-time: split at a record whose timestamp is later (by 2 ms or more:
    # an instant is read to the millisecond) than every record before it, past the middle if any.
    def clear(i: int) -> bool:
        return stamps[i] >= max(stamps[:i]) + 2

    count = end - first
    split = next((i for i in range(count // 2, count) if clear(i)), None)
    if split is None:
        split = next(i for i in range(1, count) if clear(i))
    ms = stamps[split]
    at = (
        dt.datetime.fromtimestamp(ms // 1000, dt.UTC) + dt.timedelta(milliseconds=ms % 1000)
    ).isoformat()

    # --from-offset/--to-offset: inclusive, as planned.
    [r] = _replay(path, "--from-offset", str(first + 1), "--to-offset", str(first + 3))["plan"][
        "ranges"
    ]
    assert (r["start"], r["end"], r["events"]) == (first + 1, first + 4, 3)

    conn = duckdb.connect(str(config.warehouse.path))
    try:  # scattered versions of every part of the topic
        deleted = conn.execute(
            "DELETE FROM shop.orders_history WHERE hash(_cdc_source_pos) % 3 = 0"
        ).fetchone()[0]
    finally:
        conn.close()
    assert deleted > 0
    early = _replay(path, "--to-time", at, "--execute")
    late = _replay(path, "--from-time", at, "--execute")
    assert [(x["start"], x["end"]) for x in early["plan"]["ranges"]] == [(first, first + split)]
    assert [(x["start"], x["end"]) for x in late["plan"]["ranges"]] == [(first + split, end)]
    # Each read exactly its range; between them they restored exactly the deleted versions.
    assert (early["summary"]["records"], late["summary"]["records"]) == (split, count - split)
    assert early["summary"]["applied"] + late["summary"]["applied"] == deleted
    assert histories(config.warehouse.path)["shop.orders_history"] == before


def test_replay_while_run_holds_the_warehouse(stack: Stack, tmp_path: Path) -> None:
    path, config = duckdb_config_file(stack, tmp_path, "replay_running")
    assert replicate_until_verified(config)["ok"]
    before = histories(config.warehouse.path)["shop.orders_history"]
    run, _ticket = _start_run(path, config)
    try:
        done = _cdchub(path, "replay", "--table", "shop.orders", "--execute", "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        assert "running `cdchub run`" in done.stderr
        summary = json.loads(done.stdout)["summary"]
        assert summary["applied"] == 0 and summary["already_present"] > 0
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
    assert histories(config.warehouse.path)["shop.orders_history"] == before
    assert os.path.exists(config.warehouse.path)


def test_rebuild_restores_a_damaged_table_from_its_topic(stack: Stack, tmp_path: Path) -> None:
    path, config = duckdb_config_file(stack, tmp_path, "rebuild")
    assert replicate_until_verified(config)["ok"]
    before = histories(config.warehouse.path)
    conn = duckdb.connect(str(config.warehouse.path))
    try:  # damage: lost versions, a wrong current value
        conn.execute("DELETE FROM shop.orders_history WHERE order_id % 3 = 0")
        conn.execute("UPDATE shop.orders SET notes = 'damaged'")
    finally:
        conn.close()
    plan = _cdchub(path, "rebuild", "--table", "shop.orders", "--json")
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert json.loads(plan.stdout)["summary"] is None
    done = _cdchub(path, "rebuild", "--table", "shop.orders", "--execute", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    rebuilt = json.loads(done.stdout)
    assert rebuilt["summary"]["events"] > 0
    _check_bar(done.stderr, "rebuild shop.orders", rebuilt)
    assert histories(config.warehouse.path) == before  # every table; orders rebuilt exactly
    report = verify(config)
    assert report["ok"], failures(report)


def test_replay_and_rebuild_while_run_runs_on_a_postgres_warehouse(
    stack: Stack, tmp_path: Path
) -> None:
    path, config = pg_warehouse_config_file(stack, tmp_path, "replay-pg")
    assert replicate_until_verified(config)["ok"]
    before = pg_history(config, "shop.orders_history")
    assert before
    versions = pg_history(config, "shop.orders_history", ingested_at=False)
    run, ticket = _start_run(path, config)
    try:
        # The run serves its dashboard on a PostgreSQL warehouse too.
        served = QueryTicket.read(ticket)
        assert served is not None
        lag = httpx.get(served.url + "/api/lag", timeout=60)
        assert lag.status_code == 200, lag.text
        assert "shop.public.orders" in {f"{t['source']}.{t['table']}" for t in lag.json()["tables"]}
        plan = _cdchub(path, "replay", "--table", "shop.orders", "--json")
        assert plan.returncode == 0, plan.stderr[-2000:]
        events = json.loads(plan.stdout)["plan"]["events"]
        assert events > 0
        done = _cdchub(path, "replay", "--table", "shop.orders", "--execute", "--json")
        assert run.poll() is None, "the run stopped during the replay"
        assert done.returncode == 0, done.stderr[-2000:]
        assert "running `cdchub run`" in done.stderr  # applied by the run, not beside it
        summary = json.loads(done.stdout)["summary"]
        assert summary["applied"] == 0
        # Every planned record read; every change it held already present (tombstones and
        # records Debezium wrote twice across the connector restarts of earlier tests are records
        # of the plan but not changes of their own).
        assert summary["records"] == events
        assert summary["already_present"] == summary["events"] > 0
        assert pg_history(config, "shop.orders_history") == before
        # A rebuild is handed to the run as well: same rows after it (written again).
        rebuilt = _cdchub(path, "rebuild", "--table", "shop.orders", "--execute", "--json")
        assert run.poll() is None, "the run stopped during the rebuild"
        assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
        assert "running `cdchub run`" in rebuilt.stderr
        assert json.loads(rebuilt.stdout)["summary"]["records"] == events
    finally:
        run.send_signal(signal.SIGTERM)
        _out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err[-2000:]
    assert pg_history(config, "shop.orders_history", ingested_at=False) == versions
    report = verify(config)
    assert report["ok"], failures(report)
