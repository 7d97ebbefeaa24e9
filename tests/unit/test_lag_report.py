"""The lag report, `_cdchub.checks` and the dashboard's HTTP surface, over a warehouse that the real
runner path filled from captured envelopes (Kafka is not needed: `with_kafka=False`)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cdc_consumers.runner import Runner
from connectors.warehouses.duckdb.client import DuckDBSession
from core.config import HubConfig
from observability.lagmath import current_lag
from ops.access import CursorSession, ObservabilityError, parse_window
from ops.checks import store_checks
from ops.dashboard import DashboardServer
from ops.lag_report import build_report, weighted_percentile
from tests.configs import hub_config
from tests.memory_stream import MemoryStream
from tests.unit.envelope_records import make_record

STREAMED = ["shop.public.orders.u", "shop.public.orders.c", "shop.public.customers.c"]


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[tuple[HubConfig, DuckDBSession]]:
    config = hub_config(tmp_path / "wh.duckdb")
    session = DuckDBSession(config.warehouse.path)
    stream = MemoryStream()
    runner = Runner(config, session, progress=lambda _m: None, stream_factory=stream.factory())
    for name in STREAMED:  # one batch per record: three batch rows
        stream.append_record(make_record(name))
        runner.run(until_idle=0, handle_signals=False)
    yield config, session
    session.close()


def test_report_lists_every_table_with_lag_from_the_batches(
    filled: tuple[HubConfig, DuckDBSession],
) -> None:
    config, session = filled
    report = build_report(session, config, window_s=3600, with_kafka=False)
    rows = session.conn.execute(
        "SELECT table_name, events, lag_p50_ms, last_commit_time FROM _cdchub.batches"
    ).fetchall()
    assert {t["table"] for t in report["tables"]} == {r[0] for r in rows}
    for entry in report["tables"]:
        mine = [r for r in rows if r[0] == entry["table"]]
        assert entry["events"] == sum(r[1] for r in mine)
        assert entry["batches"] == len(mine)
        assert entry["lag_ms"]["p50"] in {r[2] for r in mine}
        assert (
            entry["last_applied_commit"] == max(r[3] for r in mine).astimezone(dt.UTC).isoformat()
        )
        # No Kafka, no heartbeat: current lag falls back to the age of the last applied commit.
        assert entry["current_lag_basis"] == "last-commit"
        assert entry["current_lag_s"] >= entry["since_last_commit_s"] - 1
        assert sum(p["events"] for p in entry["series"]) == entry["events"]
    assert report["dlq_events"] == 0


def test_window_excludes_old_batches(filled: tuple[HubConfig, DuckDBSession]) -> None:
    config, session = filled
    later = time.time() + 7200  # two hours from now, a one-minute window sees no batch
    report = build_report(session, config, window_s=60, with_kafka=False, now=later)
    assert all(t["events"] == 0 and t["lag_ms"]["p50"] is None for t in report["tables"])
    assert all(t["last_applied_commit"] for t in report["tables"])


def test_verify_results_are_stored_and_reported(filled: tuple[HubConfig, DuckDBSession]) -> None:
    config, session = filled
    verdict = {
        "ok": False,
        "checked_at": dt.datetime.now(dt.UTC).isoformat(),
        "tables": [
            {
                "source": "shop",
                "table": "public.orders",
                "source_rows": 3,
                "warehouse_rows": 2,
                "missing_keys": 1,
                "unexpected_keys": 0,
                "different_rows": 0,
                "missing_columns": ["note"],
                "history": {"keys_without_exactly_one_current": 0, "broken_validity_links": 0},
                "error": None,
            }
        ],
    }
    store_checks(session, verdict)
    report = build_report(session, config, window_s=3600, with_kafka=False)
    orders = next(t for t in report["tables"] if t["table"] == "public.orders")
    by_name = {c["check"]: c for c in orders["checks"]}
    assert orders["checks_ok"] is False
    assert by_name["reconciliation"]["ok"] is False and by_name["reconciliation"]["observed"] == 2
    assert by_name["schema_drift"]["observed"] == 1
    assert by_name["history.current"]["ok"] is True
    customers = next(t for t in report["tables"] if t["table"] == "public.customers")
    assert customers["checks_ok"] is None  # never checked


def test_dashboard_serves_page_and_report_beside_the_writer(
    filled: tuple[HubConfig, DuckDBSession],
) -> None:
    config, session = filled
    reader = CursorSession(session.cursor, session.dialect)
    server = DashboardServer(
        lambda w: build_report(reader, config, window_s=w, with_kafka=False)  # type: ignore[arg-type]
    ).start()
    try:
        page = httpx.get(server.url, timeout=10)
        assert page.status_code == 200 and "lag-chart" in page.text
        assert "http://" not in page.text.replace("http://www.w3.org/2000/svg", "")
        data = httpx.get(server.url + "api/lag", params={"window": 3600}, timeout=10).json()
        assert len(data["tables"]) == 2
        assert httpx.get(server.url + "nope", timeout=10).status_code == 404
    finally:
        server.stop()


def test_current_lag_rules() -> None:
    now = 1000.0
    assert current_lag(now, 400.0, True, 990.0).seconds == 600.0  # behind: heartbeat ignored
    assert current_lag(now, 400.0, False, 990.0).seconds == 10.0  # caught up: heartbeat bounds it
    assert current_lag(now, 400.0, False, None).basis == "last-commit"
    assert current_lag(now, 1005.0, False, None).seconds == 0.0  # skew never gives negative lag
    assert current_lag(now, None, False, None).seconds is None


def test_weighted_percentile_and_window_parsing() -> None:
    assert weighted_percentile([(10, 1), (20, 3)], 50) == 20
    assert weighted_percentile([(10, 3), (20, 1)], 50) == 10
    assert weighted_percentile([], 50) is None
    assert parse_window("15m") == 900 and parse_window("90s") == 90 and parse_window("2") == 2
    with pytest.raises(ObservabilityError):
        parse_window("soon")
