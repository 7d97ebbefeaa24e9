"""`cdchub backfill` on the real stack, while the workload runs and `cdchub run` applies.

Oracles: the source databases (`verify`), and the history itself: no re-read version may equal the
version before or after it (a fake version), and a row the warehouse had wrong (tampered here: a
change the warehouse "missed") comes back as one repaired-drift version.

The warehouse is a PostgreSQL database of its own (readable while `cdchub run` writes to it).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from kafka import KafkaConsumer
from psycopg import sql

from core.config import HubConfig, load_config
from dbschemas.demo_sources import pg_connect
from tests.integration.conftest import Stack
from tests.integration.helpers import failures, replicate_until_verified, verify

pytestmark = pytest.mark.integration

TAMPERED = (1, 2, 3, 4, 5)


WAREHOUSE_DB = "cdchub_backfill_wh"


def _warehouse(stack: Stack) -> dict[str, Any]:
    """A fresh warehouse database owned by the stack's warehouse user."""
    wh = stack.layout.pg_warehouse_config()
    with pg_connect(stack.layout.pg_admin, "postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(WAREHOUSE_DB))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(WAREHOUSE_DB), sql.Identifier(wh.user)
            )
        )
    return {
        "kind": "postgres",
        "host": wh.host,
        "port": wh.port,
        "database": WAREHOUSE_DB,
        "user": wh.user,
        "password_file": str(wh.password_file),
    }


def _warehouse_conn(stack: Stack) -> psycopg.Connection:
    return pg_connect(stack.layout.pg_admin, WAREHOUSE_DB, autocommit=True)


def _config_file(stack: Stack, path: Path, warehouse: dict[str, Any], group: str) -> Path:
    doc = yaml.safe_load(stack.config_path.read_text())
    doc["warehouse"] = warehouse
    doc["kafka"]["group_id"] = group
    # Its own dashboard port: no other run answers for this warehouse.
    doc["observability"] = {"dashboard": {"port": 0}, "prometheus": {"port": 0}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def cli(config: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdchub.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fake_versions(stack: Stack) -> list[tuple[Any, ...]]:
    """Re-read (`r`) versions equal to the live version just before or after them, per table.

    Only `r` versions that follow another version: an initial-snapshot row is a key's first version,
    and a later no-op UPDATE (PostgreSQL logs one) may legitimately repeat its values.
    """
    with _warehouse_conn(stack) as conn:
        found: list[tuple[Any, ...]] = []
        tables = conn.execute(
            "SELECT warehouse_schema, history_table, key_columns FROM _cdchub.tables"
        ).fetchall()
        for schema, table, keys in tables:
            key = json.loads(keys)
            values = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                    "AND table_name = %s AND left(column_name, 5) <> '_cdc_' "
                    "ORDER BY ordinal_position",
                    [schema, table],
                ).fetchall()
                if r[0] not in key
            ]
            part = ", ".join(f'"{k}"' for k in key)
            window = f"OVER (PARTITION BY {part} ORDER BY _cdc_source_pos)"
            lags = ", ".join(
                f'LAG("{v}") {window} AS "p_{v}", LEAD("{v}") {window} AS "n_{v}"' for v in values
            )
            same_prev = " AND ".join(f'"{v}" IS NOT DISTINCT FROM "p_{v}"' for v in values)
            same_next = " AND ".join(f'"{v}" IS NOT DISTINCT FROM "n_{v}"' for v in values)
            rows = conn.execute(
                f"SELECT {part}, _cdc_source_pos FROM (SELECT *, {lags}, "
                f"LAG(_cdc_is_deleted) {window} AS p_del, LEAD(_cdc_is_deleted) {window} AS n_del, "
                f"LAG(_cdc_source_pos) {window} AS p_pos, LEAD(_cdc_source_pos) {window} AS n_pos "
                f'FROM "{schema}"."{table}") AS w WHERE _cdc_op = \'r\' AND p_pos IS NOT NULL AND ('
                f"(NOT p_del AND {same_prev}) OR "
                f"(n_pos IS NOT NULL AND NOT n_del AND {same_next}))"
            ).fetchall()
            found += [(schema, table, *r) for r in rows]
        return found


def reread_versions(stack: Stack, since: str) -> int:
    with _warehouse_conn(stack) as conn:
        row = conn.execute(
            # After the initial snapshot's position: its rows are `r` versions too.
            "SELECT count(*) FROM shop.products_history WHERE _cdc_op = 'r' "
            "AND _cdc_source_pos > %s",
            [since],
        ).fetchone()
        return int(row[0]) if row else 0


def test_backfill_while_the_workload_runs(stack: Stack, tmp_path: Path) -> None:
    warehouse = _warehouse(stack)
    config_path = _config_file(stack, tmp_path / "cdchub.yaml", warehouse, "cdchub-it-backfill")
    config: HubConfig = load_config(config_path)
    report = replicate_until_verified(config)
    assert report["ok"], failures(report)

    # Drift: the warehouse "missed" a change of five products (as a lost event would leave it).
    with _warehouse_conn(stack) as conn:
        row = conn.execute("SELECT max(_cdc_source_pos) FROM shop.products_history").fetchone()
        before = str(row[0]) if row else ""
        conn.execute(
            "UPDATE shop.products SET price = price + 1000 WHERE product_id = ANY(%s)",
            [list(TAMPERED)],
        )
        conn.execute(
            "UPDATE shop.products_history SET price = price + 1000 "
            "WHERE product_id = ANY(%s) AND _cdc_is_current",
            [list(TAMPERED)],
        )
    assert not verify(config)["ok"]

    run = subprocess.Popen(
        [sys.executable, "-m", "cdchub.cli", "run", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    # The workload as a user runs it, at a rate that outlasts both backfills (50 s: on a slow
    # 2-core host the two backfills and four CLI starts took ~25 s, the length of 3,000 events).
    producer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cdchub.cli",
            "workload",
            "--events",
            "6000",
            "--rate",
            "120",
            "--seed",
            "23",
            "--json",
            "--config",
            str(config_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)
        pg = cli(config_path, "backfill", "--table", "shop.products", "--json")
        assert pg.returncode == 0, pg.stderr
        my = cli(
            config_path,
            "backfill",
            "--table",
            "inventory.warehouses",
            "--where",
            "warehouse_id > 1",
            "--json",
        )
        assert my.returncode == 0, my.stderr
        print(pg.stdout, pg.stderr, my.stdout, my.stderr)
        assert producer.poll() is None, "the workload ended before the backfills: raise events"
        # `status` while everything runs: nothing needs a person.
        live = cli(config_path, "status", "--json")
        doc = json.loads(live.stdout)
        assert live.returncode == 0 and doc["ok"] and doc["problems"] == [], live.stdout
        assert doc["run"]["alive"] is True
        assert all(c["state"] == "RUNNING" for c in doc["connectors"])
        assert {t["table"] for t in doc["tables"]} >= {"shop.public.products"}
        assert all(t["history_versions"] > 0 for t in doc["tables"])
        assert all(t["state"] in ("running", "backfilling") for t in doc["tables"])
        text = cli(config_path, "status")
        assert text.returncode == 0 and "cdchub run: alive" in text.stdout, text.stdout
    finally:
        made, _ = producer.communicate(timeout=300)
        run.send_signal(signal.SIGTERM)
        _out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert producer.returncode == 0 and json.loads(made)["changes"] == 6000
    # The drain prints progress on change only: never the same line twice in a row.
    lines = [ln for ln in err.splitlines() if ln.startswith("run: ")]
    assert all(a != b for a, b in itertools.pairwise(lines)), lines

    products = json.loads(pg.stdout)
    assert products["completed"] and products["applied"]
    assert 0 < products["rows_read"] <= products["debezium_rows_scanned"]
    # The backfill read the warehouse through the running hub (or directly): it counted the drift.
    assert products["repaired_drift"] is not None and products["repaired_drift"] >= 1
    assert products["repaired_drift"] <= min(len(TAMPERED), products["rows_read"])
    assert products["unchanged"] == products["rows_read"] - products["repaired_drift"]
    assert products["repaired_drift"] == reread_versions(stack, before)
    warehouses = json.loads(my.stdout)
    assert warehouses["completed"] and warehouses["applied"]
    assert warehouses["condition"] == "warehouse_id > 1"
    assert warehouses["rows_read"] > 0
    assert warehouses["repaired_drift"] == 0  # nothing was wrong: no version written

    # The signaling tables are read by Debezium, never captured as tables of their own.
    consumer = KafkaConsumer(bootstrap_servers=config.kafka.bootstrap_servers)
    topics = consumer.topics()
    consumer.close()
    assert not [t for t in topics if t.endswith(".cdchub_signal")], topics

    drained = cli(config_path, "run", "--until-idle", "4", "--json")
    assert drained.returncode == 0, drained.stderr
    assert json.loads(drained.stdout)["stopped_by"] == "idle"
    report = verify(config)
    assert report["ok"], failures(report)
    assert fake_versions(stack) == []

    # `status` after the run stopped: the last verify is shown, and a stopped run needs a person.
    assert cli(config_path, "verify").returncode == 0
    after = cli(config_path, "status", "--json")
    doc = json.loads(after.stdout)
    assert after.returncode == 1 and doc["run"]["alive"] is False
    assert any("no `cdchub run` is consuming" in p for p in doc["problems"])
    assert all(t["verify_ok"] is True for t in doc["tables"])


def test_backfill_of_an_unknown_table_is_one_line_exit_2(stack: Stack, tmp_path: Path) -> None:
    config_path = _config_file(
        stack,
        tmp_path / "cdchub.yaml",
        {"kind": "duckdb", "path": str(tmp_path / "w.duckdb")},
        "cdchub-it-bf-bad",
    )
    done = cli(config_path, "backfill", "--table", "shop.nosuch")
    assert done.returncode == 2
    assert "not replicated" in done.stderr and done.stderr.strip().count("\n") == 0
    done = cli(config_path, "backfill", "--table", "shop.orders", "--where", "1; DROP TABLE x")
    assert done.returncode == 2, done.stderr


def test_status_reads_a_duckdb_warehouse_held_by_the_run(stack: Stack, tmp_path: Path) -> None:
    """On DuckDB only the run may open the file: `status` reads it through the run's endpoint."""
    duck = {"kind": "duckdb", "path": str(tmp_path / "warehouse-status.duckdb")}
    config_path = _config_file(stack, tmp_path / "cdchub.yaml", duck, "cdchub-it-status")
    run = subprocess.Popen(
        [sys.executable, "-m", "cdchub.cli", "run", "--config", str(config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            done = cli(config_path, "status", "--json")
            doc = json.loads(done.stdout) if done.stdout.strip() else {}
            tables = doc.get("tables") or []
            if len(tables) == 9 and all((t["history_versions"] or 0) > 0 for t in tables):
                break
            assert time.monotonic() < deadline, (done.stdout, done.stderr)
            time.sleep(3)
        assert doc["run"]["alive"] is True and doc["run"]["lease"]["alive"] is True
        assert all(t["state"] == "running" for t in tables)
    finally:
        run.send_signal(signal.SIGTERM)
        _out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    # The run is gone: the file opens directly, the stale lease is not taken for a live run.
    after = cli(config_path, "status", "--json")
    doc = json.loads(after.stdout)
    assert after.returncode == 1 and doc["run"]["alive"] is False
    assert sum(t["history_versions"] for t in doc["tables"]) > 0
