"""Source lifecycle on the real stack: pause, resume, restart and delete a connector, and drop its
PostgreSQL replication slot. Every command runs through the CLI as a user types it.

The connector here belongs to its own source (`shopdel`, its own slot) so the session's connectors
keep running for the other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbschemas.demo_sources import pg_connect
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

SOURCE = "shopdel"


def _config(stack: Stack, path: Path) -> Path:
    doc = yaml.safe_load(stack.config_path.read_text())
    shop = next(s for s in doc["sources"] if s["name"] == "shop")
    doc["sources"] = [
        dict(shop, name=SOURCE, tables=["public.products"], publication_name="cdchub_shop")
    ]
    doc["warehouse"] = {"kind": "duckdb", "path": str(path.parent / "warehouse-del.duckdb")}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def cli(config: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    # `--config` after the subcommand on purpose: global options are accepted there too.
    return subprocess.run(
        [sys.executable, "-m", "cdchub.cli", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _slots(stack: Stack) -> dict[str, bool]:
    with pg_connect(stack.layout.pg_admin, "shop") as conn:
        rows = conn.execute("SELECT slot_name, active FROM pg_replication_slots").fetchall()
    return {r[0]: bool(r[1]) for r in rows}


def _status(config: Path) -> dict[str, Any]:
    done = cli(config, "connectors", "status", "--json")
    return json.loads(done.stdout)[0]


def _wait_state(config: Path, state: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        entry = _status(config)
        if entry["state"] == state and entry["tasks"] and all(t == state for t in entry["tasks"]):
            return entry
        assert time.monotonic() < deadline, f"connector never reached {state}: {entry}"
        time.sleep(1)


def test_dry_run_prints_configs_with_secrets_masked(stack: Stack, tmp_path: Path) -> None:
    config = _config(stack, tmp_path / "cdchub.yaml")
    done = cli(config, "connectors", "apply", "--dry-run")
    assert done.returncode == 0, done.stderr
    planned = json.loads(done.stdout)
    assert [p["connector"] for p in planned] == [f"cdchub-{SOURCE}"]
    assert planned[0]["config"]["database.password"] == "********"
    secret = (stack.layout.pg_cdc.password() or "").strip()
    assert secret and secret not in done.stdout + done.stderr
    assert planned[0]["config"]["signal.data.collection"] == "public.cdchub_signal"


def test_pause_resume_restart_delete_and_drop_slot(stack: Stack, tmp_path: Path) -> None:
    config = _config(stack, tmp_path / "cdchub.yaml")
    slot = f"cdchub_{SOURCE}"
    done = cli(config, "connectors", "apply", "--json")
    assert done.returncode == 0, done.stderr
    [applied] = json.loads(done.stdout)  # one document: the state it waited for
    assert applied["connector"] == f"cdchub-{SOURCE}" and applied["state"] == "RUNNING"
    _wait_state(config, "RUNNING")
    assert slot in _slots(stack)

    done = cli(config, "connectors", "pause", "--source", SOURCE, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"source": SOURCE, "connector": f"cdchub-{SOURCE}", "action": "pause"}
    ]
    _wait_state(config, "PAUSED")
    assert cli(config, "connectors", "status").returncode == 1  # not all running
    paused = cli(config, "connectors", "status", "--json")
    assert paused.returncode == 1 and json.loads(paused.stdout)[0]["state"] == "PAUSED"
    assert cli(config, "connectors", "resume").returncode == 0
    _wait_state(config, "RUNNING")
    done = cli(config, "connectors", "restart", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"source": SOURCE, "connector": f"cdchub-{SOURCE}", "action": "restart"}
    ]
    _wait_state(config, "RUNNING")

    # Deleted without --drop-slot: the slot stays, and the report says so.
    done = cli(config, "connectors", "delete", "--source", SOURCE, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)[0]
    assert report["connector_deleted"] is True
    assert report["slot"]["state"] == "kept" and report["slot"]["name"] == slot
    assert f"{SOURCE}.public.products" in report["left"]["topics"]
    assert report["left"]["publication"] == "cdchub_shop"
    assert slot in _slots(stack)
    assert _status(config)["state"] == "MISSING"

    # The connector is gone (as if removed by hand): --drop-slot still drops the slot it left.
    done = cli(config, "connectors", "delete", "--drop-slot")
    assert done.returncode == 0, done.stderr
    assert "did not exist" in done.stdout and f"slot {slot}: dropped" in done.stdout
    assert "left in Kafka" in done.stdout
    assert slot not in _slots(stack)


def test_delete_drop_slot_of_a_running_connector(stack: Stack, tmp_path: Path) -> None:
    config = _config(stack, tmp_path / "cdchub.yaml")
    slot = f"cdchub_{SOURCE}"
    assert cli(config, "connectors", "apply").returncode == 0
    _wait_state(config, "RUNNING")
    assert _slots(stack).get(slot) is True  # held by the running task
    done = cli(config, "connectors", "delete", "--drop-slot", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["slot"]["state"] == "dropped"
    assert slot not in _slots(stack)


def test_unknown_source_is_one_line_exit_2(stack: Stack, tmp_path: Path) -> None:
    config = _config(stack, tmp_path / "cdchub.yaml")
    done = cli(config, "connectors", "pause", "--source", "nosuch")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "nosuch" in done.stderr
    # Under --json the error is also the one JSON document on stdout.
    done = cli(config, "connectors", "pause", "--source", "nosuch", "--json")
    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert error["ok"] is False and error["exit_code"] == 2 and "nosuch" in error["error"]
