"""End to end on the real stack: PostgreSQL + MariaDB → Debezium → Kafka → cdchub → DuckDB.

The source databases are the oracle for the current tables (`verify`), and an uninterrupted replay of
the same Kafka topics into a second warehouse is the oracle for history after crashes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from dbschemas.workload import run_workload
from tests.integration.conftest import Stack
from tests.integration.helpers import (
    failures,
    histories,
    replicate_until_verified,
    run_until_idle,
    verify,
    with_warehouse,
)

pytestmark = pytest.mark.integration

ALL_TABLES = {
    "shop.public.customers",
    "shop.public.products",
    "shop.public.orders",
    "shop.public.order_items",
    "shop.public.payments",
    "inventory.inventory.warehouses",
    "inventory.inventory.suppliers",
    "inventory.inventory.stock_levels",
    "inventory.inventory.shipments",
}


def cli(stack: Stack, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdchub.cli", "--config", str(stack.config_path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def op_counts(path: Path) -> dict[str, dict[str, int]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        out: dict[str, dict[str, int]] = {}
        for schema, table in conn.execute(
            "SELECT warehouse_schema, history_table FROM _cdchub.tables"
        ).fetchall():
            rows = conn.execute(
                f'SELECT _cdc_op, count(*) FROM "{schema}"."{table}" GROUP BY 1'
            ).fetchall()
            out[f"{schema}.{table}"] = dict(rows)
        return out
    finally:
        conn.close()


def test_snapshot_replicates_every_seed_row(stack: Stack) -> None:
    report = replicate_until_verified(stack.config)
    assert report["ok"], failures(report)
    seen = {f"{t['source']}.{t['table']}" for t in report["tables"]}
    assert seen == ALL_TABLES
    assert all(t["source_rows"] > 0 for t in report["tables"])
    ops = op_counts(stack.config.warehouse.path)
    assert all(counts.get("r", 0) > 0 for counts in ops.values()), ops


def test_inserts_updates_deletes_from_both_sources(stack: Stack) -> None:
    workload = run_workload(
        stack.layout,
        list(stack.config.sources),
        rate=None,
        duration=None,
        events=1200,
        seed=3,
        progress=lambda _m: None,
    )
    assert workload.changes == 1200
    run_until_idle(stack.config)
    report = verify(stack.config)
    assert report["ok"], failures(report)
    ops = op_counts(stack.config.warehouse.path)
    for source in ("shop", "inventory"):
        merged: dict[str, int] = {}
        for name, counts in ops.items():
            if name.startswith(source + "."):
                for op, n in counts.items():
                    merged[op] = merged.get(op, 0) + n
        assert merged.get("c", 0) > 0 and merged.get("u", 0) > 0 and merged.get("d", 0) > 0, merged


def test_tables_json_lists_every_table(stack: Stack) -> None:
    done = cli(stack, "tables", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert {f"{t['source']}.{t['source_schema']}.{t['source_table']}" for t in listed} == ALL_TABLES
    order_items = next(t for t in listed if t["source_table"] == "order_items")
    assert order_items["key_columns"] == ["order_id", "line_no"]
    assert order_items["history_table"] == "order_items_history"
    assert order_items["warehouse_schema"] == "shop"


def test_stack_status_json_shape(stack: Stack) -> None:
    done = cli(stack, "stack", "status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    for db in ("postgres", "mariadb"):
        assert set(status[db]) >= {"host", "port", "user", "password_file", "running"}
        assert status[db]["running"] is True
        password = Path(status[db]["password_file"]).read_text().strip()
        assert password and password not in done.stdout
    assert status["kafka"]["running"] and status["connect"]["running"]
    assert status["warehouse"]["kind"] == "duckdb"


def test_sigkill_mid_stream_loses_and_duplicates_nothing(stack: Stack, tmp_path: Path) -> None:
    workload_done = threading.Event()

    def produce() -> None:
        run_workload(
            stack.layout,
            list(stack.config.sources),
            rate=250,
            duration=None,
            events=2500,
            seed=11,
            progress=lambda _m: None,
        )
        workload_done.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    kills = 0
    while not workload_done.is_set() and kills < 4:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cdchub.cli", "--config", str(stack.config_path), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )
        time.sleep(3.0 + kills)  # let it join the group and apply some batches
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
    producer.join(timeout=120)
    assert kills >= 2
    run_until_idle(stack.config)
    report = verify(stack.config)
    assert report["ok"], failures(report)

    # Oracle: the same topics consumed from the beginning, without interruption, into a new warehouse.
    oracle_path = tmp_path / "oracle.duckdb"
    oracle = with_warehouse(stack.config, oracle_path, "cdchub-it-oracle")
    run_until_idle(oracle)
    assert histories(stack.config.warehouse.path) == histories(oracle_path)


def test_verify_fails_when_a_warehouse_row_is_tampered_with(stack: Stack, tmp_path: Path) -> None:
    copy = tmp_path / "tampered.duckdb"
    shutil.copy(stack.config.warehouse.path, copy)
    conn = duckdb.connect(str(copy))
    conn.execute(
        "UPDATE shop.customers SET email = email || '.tampered' "
        "WHERE customer_id = (SELECT min(customer_id) FROM shop.customers)"
    )
    conn.execute(
        "DELETE FROM inventory.suppliers WHERE supplier_id = "
        "(SELECT max(supplier_id) FROM inventory.suppliers)"
    )
    conn.close()
    config_path = tmp_path / "tampered.yaml"
    text = stack.config_path.read_text().replace(str(stack.config.warehouse.path), str(copy))
    config_path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "cdchub.cli", "--config", str(config_path), "verify", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    by_table = {t["table"]: t for t in report["tables"]}
    assert by_table["public.customers"]["different_rows"] == 1
    assert "email" in by_table["public.customers"]["samples"]["different"][0]["columns"]
    assert by_table["inventory.suppliers"]["missing_keys"] == 1
    assert by_table["public.orders"]["ok"] is True
    # The untouched warehouse still verifies.
    assert cli(stack, "verify").returncode == 0
