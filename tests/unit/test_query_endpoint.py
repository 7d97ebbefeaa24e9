"""Reading a DuckDB warehouse while another process holds it: the holder serves read-only queries on
127.0.0.1 behind a per-run token (0600 ticket file), and `cdchub sql` / `asof` / `tables` go through
it. The holder here is a real second process running `ops.service.instrumented` (what
`cdchub run` wraps itself in) on a real DuckDB file; no Kafka is needed for that part.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import yaml
from click.testing import CliRunner

from cdchub.cli import cli
from core.config import load_config
from ops.access import QueryTicket, RemoteSession, open_reader
from tests.unit.test_sql_over_history import _fill
from tests.unit.warehouses import duckdb_session

HOLDERS: dict[str, subprocess.Popen[str]] = {}
HOLDER = """
import sys
from core.config import load_config
from connectors.warehouses import open_session
from ops.service import instrumented

config = load_config(sys.argv[1])
session = open_session(config)
with instrumented(config, session, progress=lambda m: print(m, file=sys.stderr)):
    print("ready", flush=True)
    sys.stdin.read()
session.close()
"""


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, list[tuple[Any, ...]]]]:
    """A warehouse with history, held open for writing by another process."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb_session(path) as session:
        _fill(session)
        rows = session.conn.execute("SELECT id, name, qty FROM src.items ORDER BY id").fetchall()
    config = tmp_path / "cdchub.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "warehouse": {"kind": "duckdb", "path": str(path)},
                "observability": {
                    "prometheus": {"enabled": False},
                    "dashboard": {"port": 0},
                },
            }
        )
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        HOLDERS[str(config)] = holder
        yield config, rows
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def test_the_file_is_really_held(held: tuple[Path, list[Any]]) -> None:
    config, _ = held
    with pytest.raises(duckdb.IOException):
        duckdb.connect(str(load_config(config).warehouse.path), read_only=True)  # type: ignore[union-attr]


def test_cli_reads_through_the_holder(held: tuple[Path, list[Any]]) -> None:
    config, rows = held
    runner = CliRunner()
    out = runner.invoke(
        cli, ["--config", str(config), "sql", "SELECT id, name, qty FROM src.items ORDER BY id",
              "--format", "json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert [(r["id"], r["name"], r["qty"]) for r in json.loads(out.stdout)] == rows
    out = runner.invoke(cli, ["--config", str(config), "tables", "--json"])
    assert out.exit_code == 0, out.output
    assert [t["history_table"] for t in json.loads(out.stdout)] == ["items_history"]
    out = runner.invoke(
        cli, ["--config", str(config), "asof", "src.items", "--at", "now", "--json"]
    )
    assert out.exit_code == 0, out.output
    assert [(r["id"], r["name"], r["qty"]) for r in json.loads(out.stdout)] == rows
    out = runner.invoke(cli, ["--config", str(config), "sql", "DROP TABLE src.items"])
    assert out.exit_code == 2 and "not DROP" in out.stderr


def test_the_endpoint_needs_the_token_and_refuses_writes(held: tuple[Path, list[Any]]) -> None:
    config, rows = held
    hub = load_config(config)
    path = QueryTicket.path(hub)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ticket = QueryTicket.read(path)
    assert ticket is not None and ticket.url.startswith("http://127.0.0.1:")
    answer = httpx.post(f"{ticket.url}/api/query", json={"sql": "SELECT 1"})
    assert answer.status_code == 401
    answer = httpx.post(
        f"{ticket.url}/api/query",
        json={"sql": "SELECT 1"},
        headers={"Authorization": "Bearer not-the-token"},
    )
    assert answer.status_code == 401
    remote = open_reader(hub)
    assert isinstance(remote, RemoteSession)
    try:
        with pytest.raises(Exception, match="not DELETE"):
            remote.read("DELETE FROM src.items")
        assert remote.read("SELECT id, name, qty FROM src.items ORDER BY id")[1] == rows
    finally:
        remote.close()


def test_the_ticket_goes_when_the_holder_stops(held: tuple[Path, list[Any]]) -> None:
    config, _ = held
    path = QueryTicket.path(load_config(config))
    assert path.exists()
    holder = HOLDERS.pop(str(config))
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0
    assert not path.exists()


def test_no_holder_no_ticket_reads_directly(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with duckdb_session(path) as session:
        _fill(session)
    config = tmp_path / "cdchub.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "s"),
                                      "warehouse": {"kind": "duckdb", "path": str(path)}}))  # fmt: skip
    reader = open_reader(load_config(config))
    try:
        assert not isinstance(reader, RemoteSession)
    finally:
        reader.close()


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    probe = subprocess.Popen(["true"])
    probe.wait()
    return probe.pid


def test_a_ticket_left_by_a_killed_run_is_not_followed(
    held: tuple[Path, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed before it could remove its ticket leaves one behind; while the file is held by
    a run that has not published its own yet, readers wait for it rather than call the dead one's
    address, and say what they found when it does not come."""
    import threading

    from ops import access
    from ops.access import ObservabilityError

    config, rows = held
    hub = load_config(config)
    path = QueryTicket.path(hub)
    live = QueryTicket.read(path)
    assert live is not None
    stale = QueryTicket("http://127.0.0.1:9", "old-token", _dead_pid(), live.warehouse)
    stale.write(path)
    # The holder publishes its ticket again half a second later: the reader waits for it.
    later = threading.Timer(0.5, live.write, args=(path,))
    later.start()
    try:
        reader = open_reader(hub)
    finally:
        later.join()
    assert isinstance(reader, RemoteSession) and reader.ticket == live
    try:
        assert reader.read("SELECT id, name, qty FROM src.items ORDER BY id")[1] == rows
    finally:
        reader.close()
    # No live ticket comes: a clear error, not a refused connection to the dead run's port.
    stale.write(path)
    monkeypatch.setattr(access, "TICKET_WAIT_S", 0.3)
    with pytest.raises(ObservabilityError, match=f"left by pid {stale.pid}, which has exited"):
        open_reader(hub)
    live.write(path)  # the holder's own again, for its clean stop
