"""`--json` on every reporting command: exactly one JSON document on stdout, messages on stderr,
exit codes 0 ok / 1 check failed / 2 usage or config error (README, "Commands").

The warehouse is a real DuckDB file written by the real run loop (in-memory change stream); Kafka
and the sources are closed ports on 127.0.0.1, which is what a stopped server looks like. Kafka
Connect is a small REST stand-in here (its real counterpart: tests/integration/
test_connectors_lifecycle.py), so the connectors commands' documents are checked end to end
through the HTTP client.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from cdchub.cli import cli
from connectors.warehouses.duckdb.client import DuckDBSession
from merge import dead_letters
from tests.configs import config_file, hub_config
from tests.unit.test_dead_letters import _refuse_status
from tests.unit.test_dead_letters import _run as run_workload
from tests.unit.test_runner_liveness import Workload
from tests.unit.test_runner_liveness import _config as liveness_config
from tests.unit.test_stops import stop_orders


def invoke(config: Path | None, *args: str) -> Result:
    prefix = ["--config", str(config)] if config is not None else []
    return CliRunner().invoke(cli, [*prefix, *args])


def one_document(result: Result, exit_code: int = 0) -> Any:
    """stdout holds exactly one JSON document (json.loads refuses a second one), nothing else."""
    assert result.exit_code == exit_code, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


# -- a warehouse with a table stopped by a type change (orders) and a flowing one (customers) ----


@pytest.fixture
def stopped(tmp_path: Path) -> Path:
    """A DuckDB warehouse where shop.public.orders is stopped; returns the CLI config."""
    path = tmp_path / "wh.duckdb"
    config = hub_config(path)
    session = DuckDBSession(path)
    try:
        stop_orders(config, session)
    finally:
        session.close()
    return config_file(tmp_path, path)


def test_tables_json_is_one_array_of_tables(stopped: Path) -> None:
    found = one_document(invoke(stopped, "tables", "--json"))
    assert isinstance(found, list)
    by_table = {t["source_table"]: t for t in found}
    assert set(by_table) == {"orders", "customers"}
    orders = by_table["orders"]
    assert orders["source"] == "shop" and orders["warehouse_schema"] == "shop"
    assert orders["current_table"] == "orders" and orders["history_table"] == "orders_history"
    assert orders["key_columns"] == ["order_id"]


def test_schema_accept_json_and_its_refusal_as_a_json_error(stopped: Path) -> None:
    # Not stopped: a config error, exit 2, and the error is the one document on stdout.
    refused = invoke(stopped, "schema", "accept", "shop.public.customers", "--json")
    doc = one_document(refused, exit_code=2)
    assert doc["ok"] is False and doc["exit_code"] == 2 and "is not stopped" in doc["error"]
    assert "error: " in refused.stderr and "is not stopped" in refused.stderr
    import duckdb

    warehouse = yaml.safe_load(stopped.read_text())["warehouse"]["path"]
    with duckdb.connect(warehouse) as conn:
        for name in ("orders", "orders_history"):
            conn.execute(f"ALTER TABLE shop.{name} ALTER customer_id TYPE VARCHAR")
    doc = one_document(invoke(stopped, "schema", "accept", "shop.public.orders", "--json"))
    assert doc["accepted"]["source_table"] == "orders"
    assert doc["accepted"]["current_table"] == "orders"


def test_views_json_names_the_views_created_then_dropped(stopped: Path) -> None:
    created = one_document(invoke(stopped, "views", "--json"))
    assert created["action"] == "created"
    assert {"shop.orders_versions", "shop.orders_changes"} <= set(created["views"]), created
    dropped = one_document(invoke(stopped, "views", "--drop", "--json"))
    assert dropped == {"action": "dropped", "views": created["views"]}


def test_sql_json_is_one_array_of_rows_and_disagreeing_formats_are_a_usage_error(
    stopped: Path,
) -> None:
    rows = one_document(
        invoke(stopped, "sql", "SELECT order_id FROM shop.orders_history", "--json")
    )
    assert isinstance(rows, list) and rows and set(rows[0]) == {"order_id"}
    clash = invoke(stopped, "sql", "SELECT 1", "--json", "--format", "csv")
    doc = one_document(clash, exit_code=2)
    assert doc["ok"] is False and "disagree" in doc["error"]


def test_asof_json_is_one_array(stopped: Path) -> None:
    rows = one_document(invoke(stopped, "asof", "shop.customers", "--at", "now", "--json"))
    assert isinstance(rows, list) and len(rows) == 1 and "customer_id" in rows[0]


def test_lag_json_reports_the_stopped_table(stopped: Path) -> None:
    report = one_document(invoke(stopped, "lag", "--json"))
    assert report["stopped_tables"] == ["shop.public.orders"]
    assert {t["table"] for t in report["tables"]} == {"public.orders", "public.customers"}
    assert all("series" not in t for t in report["tables"])
    assert "Kafka is not reachable" in report["kafka_error"]


def test_status_json_needs_a_person_exit_1(stopped: Path) -> None:
    # Kafka, Connect and the source are down and orders is stopped: one document, exit 1.
    found = one_document(invoke(stopped, "status", "--json"), exit_code=1)
    assert found["ok"] is False and found["problems"]
    assert any("orders" in p for p in found["problems"]), found["problems"]
    assert "Kafka is not reachable" in " ".join(found["problems"])
    states = {t["table"]: t["state"] for t in found["tables"]}
    assert states["shop.public.orders"] == "stopped by schema change"
    assert set(found) >= {"stack", "connectors", "run", "tables", "dead_letters", "notes"}


def test_verify_json_with_the_source_down_is_a_failed_check(stopped: Path) -> None:
    report = one_document(invoke(stopped, "verify", "--json"), exit_code=1)
    assert report["ok"] is False
    assert "cannot connect to source 'shop'" in report["tables"][0]["error"]
    assert report["schema_drift"] == [] and report["ranges"] == []


def test_run_json_with_kafka_down_prints_one_error_document(stopped: Path) -> None:
    result = invoke(stopped, "run", "--max-seconds", "3", "--json")
    doc = one_document(result, exit_code=2)
    assert doc["ok"] is False and "Kafka is not reachable" in doc["error"]
    assert "\n" not in doc["error"]


def test_replay_json_with_kafka_down_prints_one_error_document(stopped: Path) -> None:
    result = invoke(stopped, "replay", "--table", "shop.orders", "--json")
    doc = one_document(result, exit_code=2)
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["error"]


def test_a_usage_error_inside_a_command_under_json(tmp_path: Path) -> None:
    config = config_file(tmp_path, tmp_path / "wh.duckdb")
    doc = one_document(invoke(config, "dlq", "retry", "--json"), exit_code=2)
    assert doc == {"ok": False, "error": "give letter ids or --table", "exit_code": 2}


# -- dead letters ---------------------------------------------------------------------------------


@pytest.fixture
def poisoned(tmp_path: Path) -> Path:
    """A warehouse holding one open dead letter (orders halted); returns the CLI config."""
    path = tmp_path / "wh.duckdb"
    session = DuckDBSession(path)
    try:
        w = Workload()
        w.transaction([("orders", 1, "new"), ("customers", 7, "Ann")])
        config = liveness_config(path)
        run_workload(config, session, w)
        _refuse_status(session, "poison")
        w.transaction([("orders", 1, "poison")])
        run_workload(config, session, w)
        assert len(dead_letters.letters(session, "cdchub")) == 1
    finally:
        session.close()
    return config_file(tmp_path, path)


def test_dlq_list_show_skip_retry_json(poisoned: Path) -> None:
    [letter] = one_document(invoke(poisoned, "dlq", "list", "--json"))
    assert letter["status"] == "open" and letter["table"] == "public.orders"
    assert letter["topic"] == "shop.public.orders" and isinstance(letter["offset"], int)
    letter_id = letter["id"]

    shown = one_document(invoke(poisoned, "dlq", "show", letter_id, "--json"))
    assert shown["id"] == letter_id
    assert '"poison"' in shown["record_value"] and shown["error"]

    skipped = one_document(invoke(poisoned, "dlq", "skip", letter_id, "--json"))
    assert skipped == {"action": "skip", "changed": [letter_id]}
    assert one_document(invoke(poisoned, "dlq", "list", "--json")) == []
    [done] = one_document(invoke(poisoned, "dlq", "list", "--all", "--json"))
    assert done["status"] == "skipped"

    retried = one_document(invoke(poisoned, "dlq", "retry", "--table", "shop.orders", "--json"))
    assert retried == {"action": "retry", "changed": [letter_id]}
    [again] = one_document(invoke(poisoned, "dlq", "list", "--json"))
    assert again["status"] == "retry"

    missing = invoke(poisoned, "dlq", "show", "no-such-id", "--json")
    assert "no dead letter no-such-id" in one_document(missing, exit_code=2)["error"]


# -- commands that need no warehouse ----------------------------------------------------------------


def test_stack_status_and_down_json_when_nothing_runs(tmp_path: Path) -> None:
    config = config_file(tmp_path, tmp_path / "wh.duckdb")
    status = one_document(invoke(config, "stack", "status", "--json"), exit_code=1)
    for name in ("postgres", "mariadb", "kafka", "connect"):
        assert status[name]["running"] is False
    down = one_document(invoke(config, "stack", "down", "--json"))
    assert down["purged"] is False and down["kafka"]["running"] is False


def test_load_demo_json_names_skipped_sources(tmp_path: Path) -> None:
    config = config_file(tmp_path, tmp_path / "wh.duckdb")
    doc = yaml.safe_load(config.read_text())
    doc["sources"][0]["database"] = "crm"  # not a demo database: skipped, nothing connected
    config.write_text(yaml.safe_dump(doc))
    assert one_document(invoke(config, "load-demo", "--json")) == {
        "loaded": [],
        "skipped": ["shop"],
    }


def test_init_json(tmp_path: Path) -> None:
    out = tmp_path / "new.yaml"
    result = invoke(
        None,
        "init",
        "--source",
        "shop=postgres://cdc@db.example:5432/shop",
        "--output",
        str(out),
        "--json",
    )
    doc = one_document(result)
    assert doc["config"] == str(out) and out.exists()
    assert any("REPLICATION" in line.upper() for line in doc["admin_sql"])
    assert "wrote" in result.stderr


def test_bench_merge_json(tmp_path: Path) -> None:
    config = config_file(tmp_path, tmp_path / "wh.duckdb")
    doc = one_document(
        invoke(
            config, "bench", "merge", "--events", "300", "--batch", "100", "--keys", "50", "--json"
        )
    )
    assert doc["events"] == 300 and doc["events_per_s"] > 0


# -- connectors, against a Kafka Connect REST stand-in ---------------------------------------------


class _Connect(BaseHTTPRequestHandler):
    """The few Kafka Connect REST calls the connectors commands make; one connector exists."""

    state = {"name": "cdchub-shop", "paused": False}
    calls: list[str] = []

    def log_message(self, *_args: Any) -> None:
        pass

    def _reply(self, code: int, body: Any = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _name(self) -> str | None:
        m = re.match(r"^/connectors/([^/?]+)", self.path)
        return m.group(1) if m else None

    def do_GET(self) -> None:
        self.calls.append(f"GET {self.path}")
        if self._name() != self.state["name"]:
            self._reply(404, {"message": "not found"})
            return
        state = "PAUSED" if self.state["paused"] else "RUNNING"
        self._reply(
            200,
            {
                "name": self.state["name"],
                "connector": {"state": state, "worker_id": "w"},
                "tasks": [{"id": 0, "state": state, "worker_id": "w"}],
            },
        )

    def do_PUT(self) -> None:
        self.calls.append(f"PUT {self.path}")
        if self._name() != self.state["name"]:
            self._reply(404, {"message": "not found"})
            return
        self.state["paused"] = self.path.endswith("/pause")
        self._reply(202)

    def do_POST(self) -> None:
        self.calls.append(f"POST {self.path}")
        self._reply(202 if self._name() == self.state["name"] else 404)


@pytest.fixture
def connect() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Connect)
    _Connect.state["paused"] = False
    _Connect.calls.clear()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_connectors_status_pause_resume_restart_json(tmp_path: Path, connect: str) -> None:
    config = config_file(tmp_path, tmp_path / "wh.duckdb", connect=connect)
    [entry] = one_document(invoke(config, "connectors", "status", "--json"))
    assert entry == {
        "source": "shop",
        "kind": "postgres",
        "connector": "cdchub-shop",
        "state": "RUNNING",
        "tasks": ["RUNNING"],
    }
    for action in ("pause", "resume", "restart"):
        done = one_document(invoke(config, "connectors", action, "--json"))
        assert done == [{"source": "shop", "connector": "cdchub-shop", "action": action}]
        if action == "pause":
            # A paused connector is a state that needs a person: status exits 1, still one doc.
            [paused] = one_document(invoke(config, "connectors", "status", "--json"), exit_code=1)
            assert paused["state"] == "PAUSED" and paused["tasks"] == ["PAUSED"]
    assert "PUT /connectors/cdchub-shop/pause" in _Connect.calls
    assert any(c.startswith("POST /connectors/cdchub-shop/restart") for c in _Connect.calls)


def test_connectors_unknown_connector_is_one_error_document(tmp_path: Path, connect: str) -> None:
    config = config_file(tmp_path, tmp_path / "wh.duckdb", connect=connect)
    doc = yaml.safe_load(config.read_text())
    doc["sources"][0]["name"] = "crm"  # its connector cdchub-crm does not exist
    config.write_text(yaml.safe_dump(doc))
    result = invoke(config, "connectors", "pause", "--json")
    error = one_document(result, exit_code=2)
    assert "no such connector" in error["error"] and "cdchub-crm" in error["error"]


def test_connectors_apply_dry_run_json_is_one_document(tmp_path: Path) -> None:
    config = config_file(tmp_path, tmp_path / "wh.duckdb")
    [planned] = one_document(invoke(config, "connectors", "apply", "--dry-run", "--json"))
    assert planned["connector"] == "cdchub-shop"
    assert planned["config"]["database.password"] == "********"


# Commands whose output is data in a format of its own, not a report: the dashboard serves HTTP,
# render-sql prints SQL, dbt-sources prints a dbt YAML file.
NOT_REPORTS = {"dashboard", "render-sql", "dbt-sources"}


def test_every_reporting_command_takes_json() -> None:
    import click

    missing = []

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
            return
        if " ".join(path) in NOT_REPORTS:
            return
        if not any("--json" in p.opts for p in command.params if isinstance(p, click.Option)):
            missing.append(" ".join(path))

    walk(cli, [])
    assert missing == []
