"""Stops that show and errors in one line, on the real stack (issue 10).

- A table stopped by an incompatible type change: `run` says so and exits 1, `lag` (text and JSON)
  shows it stopped with the column, the types and the command; `schema accept` refuses until the
  warehouse column holds the new type; then the held change applies and `verify` passes.
- Two `cdchub run` on one config: the second refuses, naming the first; a killed holder is taken over.
- `verify` against a source that is down: one line for that source, the other source still checked.
- `run` with the stack's Kafka stopped: one line naming the bootstrap servers, within --max-seconds.
  (Last in this file: it stops Kafka and starts it again.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
import yaml

from dbschemas.samples.mariadbserver import run_script
from infrastructure.stack.service import LocalStack
from tests.integration.conftest import Stack
from tests.integration.helpers import replicate_until_verified

pytestmark = pytest.mark.integration


def cli(config: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdchub.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_file(stack: Stack, path: Path, **changes: Any) -> Path:
    """The stack's config with another warehouse/group/sources; no metrics or dashboard ports."""
    doc = yaml.safe_load(stack.config_path.read_text())
    doc["observability"] = {"prometheus": {"port": 0}, "dashboard": {"serve_in_run": False}}
    for key, value in changes.items():
        if key == "group_id":
            doc["kafka"]["group_id"] = value
        else:
            doc[key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_a_stopped_table_shows_in_run_and_lag_and_resumes_only_when_fixed(
    stack: Stack, tmp_path: Path
) -> None:
    run_script(
        stack.layout,
        "CREATE DATABASE stops_db; USE stops_db; "
        "CREATE TABLE parts (id INT PRIMARY KEY, label VARCHAR(20) NOT NULL); "
        "CREATE TABLE bins (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL); "
        "INSERT INTO parts VALUES (1, '7'), (2, '8'); INSERT INTO bins VALUES (1, 'a');",
    )
    doc = yaml.safe_load(stack.config_path.read_text())
    base = next(s for s in doc["sources"] if s["name"] == "inventory")
    source = {**base, "name": "stops", "database": "stops_db", "server_id": 184199}
    source.pop("tables", None)
    warehouse = tmp_path / "warehouse-stops.duckdb"
    config = config_file(
        stack,
        tmp_path / "stops.yaml",
        group_id="it-stops",
        sources=[source],
        warehouse={"kind": "duckdb", "path": str(warehouse)},
    )
    applied = cli(config, "connectors", "apply")
    assert applied.returncode == 0, applied.stderr
    from core.config import load_config

    assert replicate_until_verified(load_config(config))["ok"]

    run_script(
        stack.layout,
        "USE stops_db; ALTER TABLE parts MODIFY label INT NOT NULL; "
        "UPDATE parts SET label = label + 100 WHERE id = 1; "
        "UPDATE bins SET note = 'after' WHERE id = 1;",
    )
    deadline = time.monotonic() + 180
    while True:
        done = cli(config, "run", "--until-idle", "4", "--max-seconds", "120")
        if done.returncode != 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    # run: the summary names the table, the column, both types and the command; exit status 1.
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert (
        "stops.stops_db.parts STOPPED: column 'label' changed type from string to int32"
        in done.stdout
    ), done.stdout
    assert "cdchub schema accept stops.stops_db.parts" in done.stdout
    assert "table stops.stops_db.parts stopped" in done.stderr or "STOPPED" in done.stderr

    lag = cli(config, "lag", "--json")
    assert lag.returncode == 0, lag.stderr
    report = json.loads(lag.stdout)
    tables = {t["table"]: t for t in report["tables"]}
    parts, bins = tables["stops_db.parts"], tables["stops_db.bins"]
    assert parts["state"] == "stopped" and parts["current_lag_basis"] == "stopped"
    assert parts["stopped"]["column"] == "label"
    assert (parts["stopped"]["old_type"], parts["stopped"]["new_type"]) == ("string", "int32")
    assert parts["stopped"]["resume_command"] == "cdchub schema accept stops.stops_db.parts"
    assert bins["state"] == "flowing"
    text = cli(config, "lag")
    assert "STOPPED stops.stops_db.parts: column 'label' changed type" in text.stdout

    # accept refuses a table that is not stopped, and one whose column was not altered.
    refused = cli(config, "schema", "accept", "stops.stops_db.bins")
    assert refused.returncode == 2 and "is not stopped" in error_line(refused.stderr)
    refused = cli(config, "schema", "accept", "stops.stops_db.parts")
    assert refused.returncode == 2
    assert "does not hold the held values' type int32" in error_line(refused.stderr)

    conn = duckdb.connect(str(warehouse))
    try:
        for name in ("parts", "parts_history"):
            conn.execute(f"ALTER TABLE stops.{name} ALTER label TYPE INTEGER")
    finally:
        conn.close()
    accepted = cli(config, "schema", "accept", "stops.stops_db.parts")
    assert accepted.returncode == 0, accepted.stderr
    resumed = cli(config, "run", "--until-idle", "4", "--max-seconds", "120")
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    assert "STOPPED" not in resumed.stdout
    verified = cli(config, "verify")
    assert verified.returncode == 0, verified.stdout
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert conn.execute("SELECT label FROM stops.parts WHERE id = 1").fetchone() == (107,)
    finally:
        conn.close()


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_a_second_run_on_one_config_refuses_naming_the_first(stack: Stack, tmp_path: Path) -> None:
    pg = stack.layout.pg_warehouse_config()
    warehouse = {
        "kind": "postgres",
        "host": pg.host,
        "port": pg.port,
        "database": pg.database,
        "user": pg.user,
        "password_file": str(pg.password_file),
    }
    # A source of its own, so this run writes only its own tables into the shared PG warehouse.
    run_script(
        stack.layout,
        "CREATE DATABASE lease_db; USE lease_db; "
        "CREATE TABLE tickets (id INT PRIMARY KEY, note VARCHAR(20)); "
        "INSERT INTO tickets VALUES (1, 'a'), (2, 'b');",
    )
    doc = yaml.safe_load(stack.config_path.read_text())
    base = next(s for s in doc["sources"] if s["name"] == "inventory")
    source = {**base, "name": "lease", "database": "lease_db", "server_id": 184198}
    source.pop("tables", None)
    config = config_file(
        stack, tmp_path / "lease.yaml", group_id="it-lease", warehouse=warehouse, sources=[source]
    )
    applied = cli(config, "connectors", "apply")
    assert applied.returncode == 0, applied.stderr

    def holder_pid() -> int | None:
        with psycopg.connect(
            host=pg.host, port=pg.port, dbname=pg.database, user=pg.user, password=pg.secret()
        ) as conn:
            try:
                row = conn.execute(
                    "SELECT pid FROM _cdchub.run_lease WHERE consumer_group = 'it-lease'"
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                return None
        return int(row[0]) if row else None

    log = (tmp_path / "first.log").open("wb")
    first = subprocess.Popen(
        [sys.executable, "-m", "cdchub.cli", "--config", str(config), "run"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    try:
        _wait_for(lambda: holder_pid() == first.pid, 120, "the first run's lease")
        second = cli(config, "run", "--max-seconds", "20")
        assert second.returncode == 2, second.stderr
        line = error_line(second.stderr)
        assert f"pid {first.pid}" in line and socket.gethostname() in line, line
        assert "another `cdchub run`" in line
        first.send_signal(signal.SIGKILL)  # gone without releasing the lease
        first.wait(timeout=30)
        assert holder_pid() == first.pid
        third = cli(config, "run", "--until-idle", "3", "--max-seconds", "240")
        assert third.returncode == 0, third.stderr
        assert holder_pid() is None  # released at the end
    finally:
        if first.poll() is None:
            first.kill()
        log.close()

    # DuckDB allows one writer process: the second run names the holder's PID too.
    duck = config_file(
        stack,
        tmp_path / "lease-duck.yaml",
        group_id="it-lease-duck",
        sources=[source],
        warehouse={"kind": "duckdb", "path": str(tmp_path / "warehouse-lease.duckdb")},
    )
    holder = subprocess.Popen(
        [sys.executable, "-m", "cdchub.cli", "--config", str(duck), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: (tmp_path / "warehouse-lease.duckdb").exists(), 60, "the DuckDB file")
        time.sleep(3)
        second = cli(duck, "run", "--max-seconds", "10")
        assert second.returncode == 2
        assert f"PID {holder.pid}" in error_line(second.stderr)
    finally:
        holder.send_signal(signal.SIGINT)
        try:
            holder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            holder.kill()


def test_verify_with_a_source_down_reports_it_once(stack: Stack, tmp_path: Path) -> None:
    assert replicate_until_verified(stack.config)["ok"]
    copy = tmp_path / "copy.duckdb"
    shutil.copy(stack.config.warehouse.path, copy)
    doc = yaml.safe_load(stack.config_path.read_text())
    sources = [{**s, "port": _closed_port()} if s["name"] == "shop" else s for s in doc["sources"]]
    config = config_file(
        stack,
        tmp_path / "down.yaml",
        sources=sources,
        warehouse={"kind": "duckdb", "path": str(copy)},
    )
    done = cli(config, "verify")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    shop = [line for line in lines if line.startswith(("OK   shop.", "FAIL shop."))]
    assert len(shop) == 1, done.stdout
    assert shop[0].startswith("FAIL shop.*: cannot connect to source 'shop'")
    assert "warehouse 0" not in done.stdout
    inventory = [line for line in lines if "inventory." in line]
    assert inventory and all(line.startswith("OK   inventory.") for line in inventory), lines
    assert lines[-1] == "verify: FAILED"
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) <= 2, done.stderr


def test_a_lost_warehouse_connection_is_retried_and_the_batch_applied_once(
    stack: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The real PostgreSQL server drops the engine's connection between two batches: the engine
    classifies the error retryable, reconnects, re-runs the whole transaction, and the batch takes
    effect once (independent oracle: the positions of the events sent)."""
    from merge.ledger import Checkpoint
    from merge.scd2 import Scd2Engine
    from tests.behaviour.warehouses import postgres_warehouse
    from tests.exactly_once_cases import _events
    from tests.scd2_cases import INFO, TABLE, warehouse_history

    pg = stack.layout.pg_warehouse_config()
    with postgres_warehouse(pg, (TABLE.source,)).fresh(tmp_path) as session:
        engine = Scd2Engine(session, "it-retry")
        engine.apply({TABLE: _events(0, 2)}, INFO, [Checkpoint("topic", 0, 2)])
        backend = session.conn.info.backend_pid  # type: ignore[attr-defined]
        with psycopg.connect(
            host=pg.host, port=pg.port, dbname=pg.database, user=pg.user, password=pg.secret()
        ) as killer:
            assert killer.execute("SELECT pg_terminate_backend(%s)", (backend,)).fetchone() == (
                True,
            )
        engine.apply({TABLE: _events(2, 3)}, INFO, [Checkpoint("topic", 0, 5)])
        assert session.conn.info.backend_pid != backend  # type: ignore[attr-defined]
        history = warehouse_history(session)
        assert [r[8] for r in history] == [f"{i:08d}" for i in range(5)]
        assert [r[5] for r in history] == [False] * 4 + [True]
        assert Scd2Engine(session, "it-retry").stored_checkpoints() == {("topic", 0): 5}
    retries = [r.getMessage() for r in caplog.records if "warehouse batch failed" in r.getMessage()]
    assert len(retries) == 1, retries
    assert "offsets=topic[0]@5" in retries[0] and "tables=src.public.items" in retries[0]


def test_run_with_kafka_down_fails_in_one_line_within_max_seconds(
    stack: Stack, tmp_path: Path
) -> None:
    config = config_file(
        stack,
        tmp_path / "nokafka.yaml",
        group_id="it-nokafka",
        warehouse={"kind": "duckdb", "path": str(tmp_path / "nokafka.duckdb")},
    )
    started = time.monotonic()
    baseline = cli(config, "--help")  # interpreter start and imports on this machine
    startup = time.monotonic() - started
    assert baseline.returncode == 0
    local = LocalStack(stack.config)
    local.kafka.down(progress=print)
    try:
        started = time.monotonic()
        done = cli(config, "run", "--max-seconds", "8")
        elapsed = time.monotonic() - started
        assert done.returncode == 2, done.stderr
        line = error_line(done.stderr)
        assert stack.config.kafka.bootstrap_servers in line and "Kafka is not reachable" in line
        assert len(done.stderr.splitlines()) <= 3, done.stderr  # was 83 lines of client logs
        assert elapsed < 8 + startup + 10, (elapsed, startup)  # was 30 s+, whatever --max-seconds
    finally:
        local.up(progress=print)
