"""The Grafana dashboard and the Prometheus alerts use only metric names cdchub really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import yaml

from core.observability_config import ObservabilityConfig, PrometheusConfig
from observability.metrics import HubMetrics
from observability.telemetry import build_telemetry

ROOT = Path(__file__).resolve().parents[2] / "observability"
NAME = re.compile(r"\bcdchub_[a-z_]+\b")


def exported_names() -> set[str]:
    """Names on a real scrape after every instrument recorded once."""
    telemetry = build_telemetry(ObservabilityConfig(prometheus=PrometheusConfig(port=0)))
    try:
        metrics = HubMetrics(telemetry.meter)
        attrs = {"source": "shop", "table": "public.orders"}
        metrics.replication_lag.record(0.2, attrs)
        metrics.events_applied.add(1, {**attrs, "op": "c"})
        metrics.batch_duration.record(0.1)
        metrics.negative_lag.add(1, attrs)
        metrics.slo_breaches.add(1, attrs)
        state = metrics.state
        state.consumer_lag_messages = {("shop.public.orders", 0): 1}
        state.consumer_lag_seconds = {("shop.public.orders", 0): 1.0}
        state.heartbeat_age_s = {"shop": 1.0}
        state.current_lag_s = {("shop", "public.orders"): 1.0}
        state.tables_stopped = {("shop", "public.orders"): 1}
        assert telemetry.prometheus_address is not None
        host, port = telemetry.prometheus_address
        text = httpx.get(f"http://{host}:{port}/metrics", timeout=10).text
    finally:
        telemetry.shutdown()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line.startswith("cdchub_")
    }


def test_dashboard_and_alerts_use_exported_names() -> None:
    exported = exported_names()
    grafana = json.loads((ROOT / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in grafana["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in grafana["templating"]["list"] if v["type"] == "query"]
    alerts = yaml.safe_load((ROOT / "prometheus-alerts.yml").read_text())
    exprs += [r["expr"] for g in alerts["groups"] for r in g["rules"]]
    used = {name for e in exprs for name in NAME.findall(e)}
    assert used, "no cdchub metric referenced"
    assert used <= exported, sorted(used - exported)
    # Every family the hub exports is on the dashboard.
    families = {re.sub(r"_(bucket|count|sum)$", "", n) for n in exported}
    shown = {re.sub(r"_(bucket|count|sum)$", "", n) for n in used}
    assert families <= shown, sorted(families - shown)
