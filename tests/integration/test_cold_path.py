"""The path a new user takes, cold, with the defaults they get.

The shipped `cdchub.yaml` with only its ports and paths moved (so a stack the user left running, and
the session's test stack, are untouched): `stack down --purge`, then `cdchub demo` (stack up, schemas,
connectors, the workload while the consumer applies, the drain, verify), then `cdchub run
--until-idle` with an idle time LONGER than the heartbeat interval, on both sources. These hung before
(issue 9): the demo's drain kept transactions parked for minutes, and `run --until-idle 15` never
returned because heartbeat transaction markers counted as activity. Then the stack is stopped
(`stack down`, data kept: `stack status` exits 1), started again (`stack up`) and the warehouse still
verifies against the sources that came back with their data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import _free_ports

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "cdchub.cli"]


def _cdchub(config: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=config.parent,
        env={**os.environ, "CDCHUB_CONFIG": ""},
    )


@pytest.fixture(scope="module")
def user_config() -> Iterator[Path]:
    """The shipped config, defaults intact, on free ports in a private directory."""
    base = Path(tempfile.mkdtemp(prefix="cdchub-cold-"))
    base.chmod(0o755)  # PostgreSQL runs as `postgres` and must reach its data directory
    doc = yaml.safe_load((REPO / "cdchub.yaml").read_text())
    names = ["postgres", "mariadb", "kafka", "kafka_controller", "connect"]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    doc["stack"]["ports"] = ports
    doc["kafka"]["bootstrap_servers"] = f"127.0.0.1:{ports['kafka']}"
    doc["connect"]["url"] = f"http://127.0.0.1:{ports['connect']}"
    for source in doc["sources"]:
        source["port"] = ports["postgres" if source["kind"] == "postgres" else "mariadb"]
    path = base / "cdchub.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        yield path
    finally:
        _cdchub(path, "stack", "down", "--purge", timeout=180)


def test_cold_demo_then_a_long_idle_run_both_return(user_config: Path) -> None:
    purged = _cdchub(user_config, "stack", "down", "--purge", timeout=180)
    assert purged.returncode == 0, purged.stderr[-2000:]

    started = time.monotonic()
    demo = _cdchub(user_config, "demo", "--json", timeout=900)
    assert demo.returncode == 0, (demo.stdout[-3000:], demo.stderr[-3000:])
    summary = json.loads(demo.stdout)
    assert summary["ok"] and summary["events_applied"] > 0
    assert all(t["ok"] for t in summary["tables"])
    print(f"cold demo: {time.monotonic() - started:.0f}s, {summary['events_applied']} events")

    # Idle time 15 s > the 10 s heartbeat interval of both sources (the default config).
    idle = 15.0
    started = time.monotonic()
    run = _cdchub(user_config, "run", "--until-idle", str(idle), timeout=idle + 120)
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr[-3000:]
    assert "stopped by idle" in run.stdout
    # Caught up already: idle time plus start-up (consumer group join, first fetch), not minutes.
    assert elapsed < idle + 60, f"run --until-idle {idle} took {elapsed:.0f}s"
    print(f"run --until-idle {idle:.0f}: returned in {elapsed:.1f}s")

    # Stop the stack, keeping its data; status says so (exit 1). Start it again: the sources come
    # back with their data, and the warehouse still verifies against them.
    down = _cdchub(user_config, "stack", "down", timeout=180)
    assert down.returncode == 0, down.stderr[-2000:]
    stopped = _cdchub(user_config, "stack", "status", "--json", timeout=60)
    assert stopped.returncode == 1, stopped.stderr[-2000:]
    components = ("postgres", "mariadb", "kafka", "connect")
    assert not any(json.loads(stopped.stdout)[c]["running"] for c in components)
    up = _cdchub(user_config, "stack", "up", timeout=600)
    assert up.returncode == 0, up.stderr[-3000:]
    running = _cdchub(user_config, "stack", "status", timeout=60)
    assert running.returncode == 0, running.stdout + running.stderr[-2000:]
    assert "stopped" not in running.stdout
    verified = _cdchub(user_config, "verify", "--json", timeout=600)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
    assert json.loads(verified.stdout)["ok"]
