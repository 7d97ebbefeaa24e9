"""Observability on the real stack: `cdchub run` exports metrics and serves the dashboard while a
workload runs; `cdchub lag --json` covers every table; a real headless Chromium renders the charts.

Oracles: the workload's own count of committed row changes (per op), the PostgreSQL heartbeat table,
and the table registry of the warehouse.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import yaml

from dbschemas.demo_sources import pg_connect
from dbschemas.workload import run_workload
from tests.integration.conftest import Stack
from tests.integration.test_pipeline import ALL_TABLES

pytestmark = pytest.mark.integration

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    """Parse the Prometheus text format into (name, labels, value) samples."""
    samples = []
    for line in httpx.get(url, timeout=10).text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = dict(_LABEL.findall(match.group(2) or ""))
            samples.append((match.group(1), labels, float(match.group(3))))
    return samples


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **want: str) -> float:
    return sum(
        v
        for n, labels, v in samples
        if n == name and all(labels.get(k) == x for k, x in want.items())
    )


@dataclass
class Running:
    config_path: Path
    metrics_url: str
    dashboard_url: str
    proc: subprocess.Popen[bytes]
    log: Path


def cli(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdchub.cli", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def running(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`cdchub run` as a subprocess with its own warehouse, group and observability ports."""
    base = tmp_path_factory.mktemp("obs")
    prom, dash = _free_port(), _free_port()
    doc = yaml.safe_load(stack.config_path.read_text())
    doc["warehouse"] = {"kind": "duckdb", "path": str(base / "obs.duckdb")}
    doc["kafka"]["group_id"] = "cdchub-it-obs"
    doc["observability"] = {
        "prometheus": {"port": prom},
        "dashboard": {"port": dash},
        "sample_interval_s": 1,
    }
    config_path = base / "obs.yaml"
    config_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    log = base / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cdchub.cli", "--config", str(config_path), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
    running = Running(
        config_path, f"http://127.0.0.1:{prom}/metrics", f"http://127.0.0.1:{dash}/", proc, log
    )
    try:
        _wait_caught_up(running)
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _lag_json(config_path: Path) -> dict[str, Any]:
    done = cli(config_path, "lag", "--json", "--window", "1h")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _wait_caught_up(running: Running, timeout: float = 240) -> dict[str, Any]:
    """Until every table is replicated and the group has read every data topic to its end."""
    deadline = time.monotonic() + timeout
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        assert running.proc.poll() is None, running.log.read_text()
        done = cli(running.config_path, "lag", "--json")
        if done.returncode == 0:
            report = json.loads(done.stdout)
            seen = {f"{t['source']}.{t['table']}" for t in report["tables"]}
            if seen == ALL_TABLES and all(
                t["consumer_lag_messages"] == 0 for t in report["tables"]
            ):
                return report
        time.sleep(2)
    raise AssertionError(f"not caught up: {report}\n{running.log.read_text()[-3000:]}")


def test_prometheus_lag_histogram_during_a_real_run(stack: Stack, running: Running) -> None:
    before = scrape(running.metrics_url)
    workload = run_workload(
        stack.layout,
        list(stack.config.sources),
        rate=150,
        duration=None,
        events=450,
        seed=21,
        progress=lambda _m: None,
    )
    ops = {
        "c": sum(s.inserts for s in workload.sources.values()),
        "u": sum(s.updates for s in workload.sources.values()),
        "d": sum(s.deletes for s in workload.sources.values()),
    }
    deadline = time.monotonic() + 120
    while True:
        after = scrape(running.metrics_url)
        applied = {
            op: total(after, "cdchub_events_applied_total", op=op)
            - total(before, "cdchub_events_applied_total", op=op)
            for op in ops
        }
        if applied == ops or time.monotonic() > deadline:
            break
        time.sleep(1)
    # Every committed row change reached the warehouse exactly once, by op (the workload's count).
    assert applied == ops

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    count = delta("cdchub_replication_lag_seconds_count")
    assert count == workload.changes  # one lag observation per streamed change
    mean = delta("cdchub_replication_lag_seconds_sum") / count
    # Sane: positive, and far below the time the workload itself took plus a few batch waits.
    assert 0 < mean < workload.elapsed + 30
    buckets = sorted(
        (float(labels["le"]), v)
        for name, labels, v in after
        if name == "cdchub_replication_lag_seconds_bucket"
        and labels.get("table") == "public.orders"
    )
    cumulative = [v for _le, v in buckets]
    assert cumulative == sorted(cumulative) and buckets[-1][0] == float("inf")
    series = {
        labels["table"] for n, labels, _v in after if n == "cdchub_replication_lag_seconds_count"
    }
    written = {table for s in workload.sources.values() for table in s.tables}
    for table in written:  # every table the workload wrote has its own lag series
        assert any(t.split(".")[-1] == table.split(".")[-1] for t in series), (table, series)
    assert total(after, "cdchub_dlq_events_total") == 0
    assert total(after, "cdchub_batch_duration_seconds_count") > 0
    # Sampled gauges: consumer lag per partition, and the PostgreSQL source's heartbeat age.
    assert any(n == "cdchub_kafka_consumer_lag" for n, _l, _v in after)
    deadline = time.monotonic() + 60
    while not any(
        n == "cdchub_debezium_heartbeat_age_seconds" and labels.get("source") == "shop"
        for n, labels, _v in scrape(running.metrics_url)
    ):
        assert time.monotonic() < deadline, "no heartbeat age for source shop"
        time.sleep(2)


def _beat_age(stack: Stack) -> float | None:
    """Seconds since the shop source's heartbeat row was written (read as the admin)."""
    with pg_connect(stack.layout.pg_admin, "shop") as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM now() - beat_at) FROM public.cdchub_heartbeat "
            "WHERE source = 'shop'"
        ).fetchone()
    return float(row[0]) if row is not None else None


def test_heartbeat_action_query_keeps_beating_while_idle(stack: Stack, running: Running) -> None:
    # No workload here: the PostgreSQL source is idle, yet its heartbeat row keeps being rewritten.
    interval_s = stack.config.source("shop").heartbeat_interval_ms / 1000
    ages: list[float] = []
    deadline = time.monotonic() + 4 * interval_s
    while time.monotonic() < deadline:
        age = _beat_age(stack)
        if age is not None:
            ages.append(age)
        time.sleep(2)
    assert ages, "Debezium never ran the heartbeat action query"
    assert max(ages) < 2 * interval_s + 5, ages


class _Charts(HTMLParser):
    """Collect the dashboard's cards and chart polylines from a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: str | None = None
        self.charts: list[int] = []
        self.polylines: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.loaded = a.get("data-loaded")
        if tag == "svg" and "lag-chart" in (a.get("class") or ""):
            self.charts.append(int(a.get("data-points") or 0))
        if tag == "polyline":
            self.polylines.append(a.get("points") or "")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is missing: run infrastructure/scripts/install-system-packages.sh")
    return found


def test_dashboard_in_headless_chromium(stack: Stack, running: Running, tmp_path: Path) -> None:
    browser = _chromium()
    workload = run_workload(
        stack.layout,
        list(stack.config.sources),
        rate=100,
        duration=None,
        events=300,
        seed=23,
        progress=lambda _m: None,
    )
    assert workload.changes == 300
    _wait_caught_up(running)
    url = running.dashboard_url + "?window=300"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000"]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    charts = _Charts()
    charts.feed(dom.stdout)
    assert charts.loaded == str(len(ALL_TABLES)), dom.stdout[-2000:]
    assert len(charts.charts) == len(ALL_TABLES)
    # The workload wrote to tables of both sources: their charts have points, drawn as polylines.
    written = {t for s in workload.sources.values() for t in s.tables}
    assert sum(1 for n in charts.charts if n > 0) >= min(2, len(written)), charts.charts
    assert charts.polylines and all(len(p.split()) >= 1 for p in charts.polylines)
    shot = tmp_path / "dashboard.png"
    done = subprocess.run(
        [browser, *flags, "--window-size=1400,1100", f"--screenshot={shot}", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]
    target = os.environ.get("CDCHUB_DASHBOARD_SCREENSHOT")
    if target:  # `CDCHUB_DASHBOARD_SCREENSHOT=docs/dashboard.png pytest -k chromium` refreshes it
        shutil.copy(shot, target)


def test_lag_json_reports_every_table(running: Running) -> None:
    # While the run holds the DuckDB file, `cdchub lag` asks the run's own endpoint.
    live = _lag_json(running.config_path)
    assert {f"{t['source']}.{t['table']}" for t in live["tables"]} == ALL_TABLES
    for t in live["tables"]:
        assert t["last_applied_commit"] is not None
        assert t["current_lag_s"] is not None and t["current_lag_s"] >= 0
    # Stopped: the file is read directly, and says the same about which tables exist.
    running.proc.send_signal(signal.SIGINT)
    assert running.proc.wait(timeout=60) == 0, running.log.read_text()[-3000:]
    stopped = _lag_json(running.config_path)
    assert {f"{t['source']}.{t['table']}" for t in stopped["tables"]} == ALL_TABLES
    assert all(t["consumer_lag_messages"] == 0 for t in stopped["tables"])
    # Caught up with a recent heartbeat: lag is bounded by the heartbeat, not by the last change.
    assert set(stopped["heartbeat_age_s"]) == {"shop", "inventory"}, stopped
    assert all(t["current_lag_basis"] == "heartbeat" for t in stopped["tables"]), stopped
    for t in stopped["tables"]:
        assert t["current_lag_s"] <= stopped["heartbeat_age_s"][t["source"]] + 1, t
    human = cli(running.config_path, "lag")
    assert human.returncode == 0 and "public.orders" in human.stdout

    # verify stores its verdicts; the demo's types raise no schema drift; the report shows them.
    verified = cli(running.config_path, "verify", "--json")
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
    drift = json.loads(verified.stdout)["schema_drift"]
    assert {f"{d['source']}.{d['table']}" for d in drift} == ALL_TABLES
    assert all(d["ok"] for d in drift), [d for d in drift if not d["ok"]]
    checked = _lag_json(running.config_path)
    assert all(t["checks_ok"] is True for t in checked["tables"]), checked["tables"]
    assert {c["check"] for c in checked["tables"][0]["checks"]} == {
        "reconciliation",
        "history.current",
        "history.links",
        "schema_drift",
    }


def test_verify_ranges_localise_a_tampered_row(running: Running, tmp_path: Path) -> None:
    if running.proc.poll() is None:  # the warehouse file must be free to copy
        running.proc.send_signal(signal.SIGINT)
        running.proc.wait(timeout=60)
    doc = yaml.safe_load(running.config_path.read_text())
    copy = tmp_path / "tampered.duckdb"
    shutil.copy(doc["warehouse"]["path"], copy)
    conn = duckdb.connect(str(copy))
    try:
        (key,) = conn.execute("SELECT max(order_id) FROM shop.orders").fetchone() or (None,)
        conn.execute("UPDATE shop.orders SET notes = 'tampered' WHERE order_id = ?", [key])
    finally:
        conn.close()
    doc["warehouse"]["path"] = str(copy)
    config_path = tmp_path / "tampered.yaml"
    config_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    done = cli(config_path, "verify", "--json", "--ranges", "4")
    assert done.returncode == 1, done.stderr[-2000:]
    ranges = {f"{r['source']}.{r['table']}": r for r in json.loads(done.stdout)["ranges"]}
    assert set(ranges) == ALL_TABLES
    orders = ranges["shop.public.orders"]
    assert orders["ranges"] == 4 and len(orders["mismatched"]) == 1, orders
    (bad,) = orders["mismatched"]
    assert int(bad["from"][0]) <= key <= int(bad["to"][0])
    assert all(not r["mismatched"] for name, r in ranges.items() if name != "shop.public.orders")
