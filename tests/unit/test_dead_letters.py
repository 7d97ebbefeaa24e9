"""Dead letters through the real run loop (in-memory stream, real DuckDB warehouse).

A poison event goes to `_cdchub.dead_letters` with its error and coordinates; under `halt` its table
stops (its later events held) while the other tables flow; `cdchub dlq retry` after the fix lands it
in its place in history; `skip` gives it up and resumes the table; under `skip` nothing stops.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from cdc_consumers.runner import Runner
from cdchub.cli import cli
from cdchub.dlq_service import decide
from connectors.warehouses.duckdb.client import DuckDBSession
from core.config import DeadLetterConfig, HubConfig
from merge import dead_letters
from tests.unit.test_runner_liveness import Workload, _config, _current

GROUP = "cdchub"


def _run(config: HubConfig, session: DuckDBSession, w: Workload) -> None:
    runner = Runner(config, session, progress=lambda _m: None, stream_factory=w.stream.factory())
    result = runner.run(until_idle=0.2, max_seconds=30, handle_signals=False)
    assert result.stopped_by == "idle", result.waiting


def _rebuild_history(session: DuckDBSession, check: str | None) -> None:
    """Rebuild shop.orders_history as the hub created it, plus (or minus) one CHECK constraint."""
    ddl = session.conn.execute(
        "SELECT sql FROM duckdb_tables() WHERE schema_name = 'shop' AND table_name = 'orders_history'"
    ).fetchone()[0]
    ddl = re.sub(r",\s*CHECK\(.*\)\s*\);?\s*$", ");", ddl.strip())
    if check is not None:
        ddl = ddl.rstrip(";").rstrip()[:-1] + f", CHECK ({check}));"
    session.conn.execute("CREATE TABLE shop.keep AS SELECT * FROM shop.orders_history")
    session.conn.execute("DROP TABLE shop.orders_history")
    session.conn.execute(ddl)
    session.conn.execute("INSERT INTO shop.orders_history SELECT * FROM shop.keep")
    session.conn.execute("DROP TABLE shop.keep")


def _refuse_status(session: DuckDBSession, value: str | None) -> None:
    """A warehouse that refuses one status value (a constraint a DBA added), or no longer does."""
    _rebuild_history(session, None if value is None else f"status <> '{value}'")


def test_a_value_the_warehouse_refuses_halts_its_table_and_a_retry_lands_it_in_place(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    w = Workload()
    w.transaction([("orders", 1, "new"), ("customers", 7, "Ann")])
    config = _config(tmp_path / "wh.duckdb")
    _run(config, warehouse, w)
    _refuse_status(warehouse, "poison")
    w.transaction([("orders", 1, "poison"), ("customers", 7, "Bob")])
    w.transaction([("orders", 2, "paid")])
    w.transaction([("customers", 8, "Cy")])
    _run(config, warehouse, w)
    # orders stopped at the poison; customers went on.
    assert _current(warehouse) == {
        ("orders", 1): "new",
        ("customers", 7): "Bob",
        ("customers", 8): "Cy",
    }
    [letter] = dead_letters.letters(warehouse, GROUP)
    assert letter.status == dead_letters.OPEN and letter.table_name == "public.orders"
    assert letter.error_kind == "apply" and "poison" not in letter.event_key
    assert letter.topic == "shop.public.orders" and letter.source_position
    held = warehouse.conn.execute("SELECT count(*) FROM _cdchub.parked_records").fetchone()
    assert held == (1,)  # orders 2 waits behind the poison
    # A restart keeps the table stopped.
    _run(config, warehouse, w)
    assert ("orders", 2) not in _current(warehouse)
    # Fix the cause, retry: the event lands in its place, the held one follows.
    _refuse_status(warehouse, None)
    assert decide(warehouse, GROUP, "retry", [letter.letter_id]) == [letter.letter_id]
    _run(config, warehouse, w)
    assert _current(warehouse) == w.latest
    statuses = [x.status for x in dead_letters.letters(warehouse, GROUP)]
    assert statuses == [dead_letters.APPLIED]
    history = warehouse.conn.execute(
        "SELECT status FROM shop.orders_history WHERE order_id = 1 ORDER BY _cdc_source_pos"
    ).fetchall()
    assert history == [("new",), ("poison",)]
    assert warehouse.conn.execute("SELECT count(*) FROM _cdchub.parked_records").fetchone() == (0,)


def test_an_undecodable_record_is_a_dead_letter_and_skip_resumes_the_table(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    w = Workload()
    w.transaction([("orders", 1, "new")])
    w.stream.append("shop.public.orders", b"{}", b'{"schema":{"type":"struct"},"garbage":1}')
    w.transaction([("orders", 2, "paid"), ("customers", 7, "Ann")])
    config = _config(tmp_path / "wh.duckdb", transaction_timeout_s=0.2)
    _run(config, warehouse, w)
    [letter] = dead_letters.letters(warehouse, GROUP)
    assert letter.error_kind == "decode" and letter.record_offset == 1
    assert ("orders", 2) not in _current(warehouse) and ("customers", 7) in _current(warehouse)
    # Retrying an undecodable record fails again, visibly; skipping resumes the table.
    decide(warehouse, GROUP, "retry", [letter.letter_id])
    _run(config, warehouse, w)
    assert dead_letters.letters(warehouse, GROUP)[0].status == dead_letters.OPEN
    decide(warehouse, GROUP, "skip", [letter.letter_id])
    _run(config, warehouse, w)
    assert _current(warehouse) == w.latest


def test_under_the_skip_policy_nothing_stops(tmp_path: Path, warehouse: DuckDBSession) -> None:
    w = Workload()
    w.transaction([("orders", 1, "new")])
    base = _config(tmp_path / "wh.duckdb")
    config = base.model_copy(
        update={"dead_letters": DeadLetterConfig(tables={"shop.public.orders": "skip"})}
    )
    _run(config, warehouse, w)
    _refuse_status(warehouse, "poison")
    w.transaction([("orders", 1, "poison")])
    w.transaction([("orders", 2, "paid")])
    _run(config, warehouse, w)
    assert _current(warehouse) == {("orders", 1): "new", ("orders", 2): "paid"}
    [letter] = dead_letters.letters(warehouse, GROUP)
    assert letter.status == dead_letters.SKIPPED


def _dlq(config_file: Path, *args: str) -> Result:
    """`cdchub dlq ...` as a user types it, on the warehouse file (no run holds it)."""
    return CliRunner().invoke(cli, ["--config", str(config_file), "dlq", *args])


def test_dlq_commands_as_a_user_types_them(tmp_path: Path) -> None:
    w = Workload()
    w.transaction([("orders", 1, "new")])
    w.stream.append("shop.public.orders", b"{}", b'{"schema":{"type":"struct"},"garbage":1}')
    w.transaction([("orders", 2, "paid"), ("customers", 7, "Ann")])
    config = _config(tmp_path / "wh.duckdb", transaction_timeout_s=0.2)
    config_file = tmp_path / "cdchub.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "sources": [
                    {
                        "name": "shop",
                        "kind": "postgres",
                        "port": 1,
                        "database": "shop",
                        "user": "u",
                        "password": "p",
                    }
                ],
                "warehouse": {"kind": "duckdb", "path": str(tmp_path / "wh.duckdb")},
            }
        )
    )

    def run_once() -> None:
        session = DuckDBSession(tmp_path / "wh.duckdb")
        try:
            _run(config, session, w)
        finally:
            session.close()

    run_once()
    listed = _dlq(config_file, "list", "--json")
    assert listed.exit_code == 0, (listed.output, listed.stderr)
    [letter] = json.loads(listed.stdout)
    assert letter["status"] == "open" and letter["error_kind"] == "decode"
    text = _dlq(config_file, "list")
    assert letter["id"] in text.stdout and "shop.public.orders" in text.stdout
    shown = _dlq(config_file, "show", letter["id"], "--json")
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    assert doc["id"] == letter["id"] and '"garbage":1' in doc["record_value"]
    assert "error_kind: decode" in _dlq(config_file, "show", letter["id"]).stdout
    unknown = _dlq(config_file, "show", "nosuch")
    assert unknown.exit_code == 2 and "no dead letter nosuch" in unknown.stderr
    # retry --table: an undecodable record fails again and is open again after the run.
    retried = _dlq(config_file, "retry", "--table", "shop.orders")
    assert retried.exit_code == 0, retried.output
    assert f"1 dead letter(s) marked for retry: {letter['id']}" in retried.stdout
    run_once()
    assert json.loads(_dlq(config_file, "list", "--json").stdout)[0]["status"] == "open"
    assert _dlq(config_file, "retry").exit_code == 2  # neither ids nor --table
    # skip gives it up: the table resumes, and `list` shows it only with --all.
    skipped = _dlq(config_file, "skip", letter["id"])
    assert skipped.exit_code == 0 and f"1 dead letter(s) skipped: {letter['id']}" in skipped.stdout
    assert "no dead letters waiting" in _dlq(config_file, "list").stdout
    everything = json.loads(_dlq(config_file, "list", "--all", "--json").stdout)
    assert [(x["id"], x["status"]) for x in everything] == [(letter["id"], "skipped")]
    run_once()
    session = DuckDBSession(tmp_path / "wh.duckdb")
    try:
        assert _current(session) == w.latest
    finally:
        session.close()
