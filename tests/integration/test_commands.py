"""README commands no other integration test runs, run as a user types them, on the real stack.

`cdchub load-demo` (idempotent on a loaded stack), `cdchub stack load-sample` (its printed
`sources:` entry is a valid config entry naming tables that exist), `cdchub dashboard --port N`
(serves the page and the lag report of a replicated warehouse), and the README's `cdchub sql`
examples pasted as they are. `stack up` and `stack down` run
on a private stack in tests/integration/test_cold_path.py. docs/commands.md maps every README row
to its tests.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from core.config import SourceConfig, load_config
from dbschemas.demo_sources import mariadb_connect, pg_connect
from tests.integration.conftest import Stack, _free_ports
from tests.integration.helpers import failures, replicate_until_verified

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "cdchub.cli"]


def _cdchub(config: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--config", str(config), *args], capture_output=True, text=True, timeout=timeout
    )


def _shop_counts(stack: Stack) -> dict[str, int]:
    counts = {}
    with pg_connect(stack.layout.pg_admin, "shop") as conn:
        for table in ("customers", "products", "orders", "order_items", "payments"):
            row = conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()
            counts[table] = int(row[0]) if row else -1
    return counts


def test_load_demo_on_a_loaded_stack_changes_nothing(stack: Stack) -> None:
    before = _shop_counts(stack)
    assert all(n > 0 for n in before.values()), before
    done = _cdchub(stack.config_path, "load-demo")
    assert done.returncode == 0, done.stderr[-2000:]
    # Both demo sources are found loaded, and neither is seeded again.
    assert done.stderr.count("tables hold data, not seeding") == 2, done.stderr
    assert _shop_counts(stack) == before


def test_load_sample_prints_a_source_entry_for_tables_that_exist(stack: Stack) -> None:
    first = _cdchub(stack.config_path, "stack", "load-sample", "northwind", timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    [entry] = yaml.safe_load(first.stdout)
    source = SourceConfig.model_validate(entry)
    assert source.kind == "mariadb" and source.port == stack.config.stack.ports.mariadb
    assert source.tables and len(source.tables) >= 10
    conn = mariadb_connect(stack.layout.mariadb_admin, source.database)
    try:
        with conn.cursor() as cursor:
            for table in source.tables:
                schema, name = table.split(".")
                cursor.execute(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = %s AND table_name = %s",
                    (schema, name),
                )
                assert cursor.fetchone() == (1,), table
            cursor.execute("SELECT count(*) FROM orders")
            orders = cursor.fetchone()
    finally:
        conn.close()
    assert orders is not None and orders[0] > 0
    datasets = Path(__file__).resolve().parents[2] / "dbschemas" / "datasets"
    again = _cdchub(
        stack.config_path, "stack", "load-sample", "northwind", "--datasets", str(datasets),
        timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert yaml.safe_load(again.stdout) == [entry]  # idempotent: the same entry, nothing reloaded


@pytest.fixture(scope="module")
def replicated(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config file whose DuckDB warehouse holds both demo sources, verified."""
    tmp = tmp_path_factory.mktemp("commands")
    doc: dict[str, Any] = yaml.safe_load(stack.config_path.read_text())
    doc["warehouse"] = {"kind": "duckdb", "path": str(tmp / "dash.duckdb")}
    doc["kafka"]["group_id"] = "it-commands-dashboard"
    doc["state_dir"] = str(tmp / "state")
    path = tmp / "cdchub.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    report = replicate_until_verified(load_config(path))
    assert report["ok"], failures(report)
    return path


def test_the_readme_sql_examples_run_as_written(replicated: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    examples = [
        shlex.split(line)[1:]
        for line in readme.splitlines()
        if line.startswith(".venv/bin/cdchub sql ")
    ]
    assert len(examples) == 2, examples
    outputs = []
    for args in examples:
        done = _cdchub(replicated, *args)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        outputs.append(list(csv.reader(io.StringIO(done.stdout))))  # CSV when piped
    by_status, history = outputs
    assert by_status[0][0] == "status"
    assert history[0][:1] == ["order_id"] and len(history) == 1 + 10
    keys = [(int(r[0]), r[history[0].index("_cdc_source_pos")]) for r in history[1:]]
    assert keys == sorted(keys)


def test_dashboard_serves_the_page_and_the_lag_report(replicated: Path) -> None:
    path = replicated
    [port] = _free_ports(1)
    server = subprocess.Popen(
        [*CLI, "--config", str(path), "dashboard", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Started as a background job of a script is: SIGINT ignored, which Python keeps.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[1][-2000:]
            try:
                page = httpx.get(url + "/", timeout=5)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the dashboard never answered"
                time.sleep(0.5)
        assert page.status_code == 200 and "lag-chart" in page.text
        lag = httpx.get(url + "/api/lag", params={"window": 3600}, timeout=60)
        assert lag.status_code == 200, lag.text
        data = lag.json()
        assert data["consumer_group"] == "it-commands-dashboard"
        tables = {f"{t['source']}.{t['table']}" for t in data["tables"]}
        assert {"shop.public.orders", "inventory.inventory.shipments"} <= tables, tables
        assert data["dlq_events"] == 0
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        _out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err[-2000:]


def test_workload_for_a_duration(stack: Stack) -> None:
    before = _shop_counts(stack)
    started = time.monotonic()
    done = _cdchub(
        stack.config_path, "workload", "--duration", "4", "--rate", "25", "--seed", "5", "--json"
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert not result["interrupted"] and result["changes"] > 0 and result["transactions"] > 0
    assert 3.0 <= result["elapsed_s"] <= 15.0 and elapsed < 120
    # The source is the oracle: each shop table grew by the rows it says it inserted, less deletes.
    after = _shop_counts(stack)
    tables = result["sources"]["shop"]["tables"]
    for table, count in after.items():
        ops = tables.get(table, {"insert": 0, "delete": 0})
        assert count - before[table] == ops["insert"] - ops["delete"], (table, ops)
