"""The `observability:` and `checks:` config sections: defaults for the local stack, loud typos."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.debezium import connector_config
from core.config import load_config
from core.errors import ConfigError

BASE = """
sources:
  - name: shop
    kind: postgres
    port: 5432
    database: shop
    user: reader
    password: pw
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cdchub.yaml"
    path.write_text(text)
    return path


def test_defaults_suit_the_local_stack(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    obs = config.observability
    assert (obs.prometheus.enabled, obs.prometheus.host, obs.prometheus.port) == (
        True,
        "127.0.0.1",
        29464,
    )
    assert obs.dashboard.host == "127.0.0.1" and not obs.otlp.enabled
    assert config.checks.interval_seconds is None
    assert obs.slo_for("shop.public.orders") is None


def test_sections_are_read_and_slo_per_table_wins(tmp_path: Path) -> None:
    text = BASE + (
        "observability:\n  otlp: {enabled: true, protocol: grpc, endpoint: 'otel:4317'}\n"
        "  freshness_slo_s: 60\n  freshness_slo_per_table_s: {shop.public.orders: 5}\n"
        "checks: {interval_seconds: 600}\n"
    )
    config = load_config(write(tmp_path, text))
    assert config.observability.otlp.protocol == "grpc"
    assert config.observability.slo_for("shop.public.orders") == 5
    assert config.observability.slo_for("shop.public.payments") == 60
    assert config.checks.interval_seconds == 600


def test_misspelt_key_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"observability\.prometheus\.prot"):
        load_config(write(tmp_path, BASE + "observability:\n  prometheus: {prot: 1}\n"))


def test_postgres_connector_gets_the_heartbeat_action_query(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    generated = connector_config(config.sources[0], config)
    query = generated["heartbeat.action.query"]
    assert query.startswith('INSERT INTO "public"."cdchub_heartbeat"') and "'shop'" in query
    # All tables captured: the heartbeat and signaling tables are excluded from capture explicitly.
    assert generated["table.exclude.list"] == r"public\.cdchub_heartbeat,public\.cdchub_signal"
    off = load_config(write(tmp_path, BASE + "    heartbeat_table: null\n"))
    assert "heartbeat.action.query" not in connector_config(off.sources[0], off)


def test_mariadb_connector_gets_no_action_query(tmp_path: Path) -> None:
    # No slot to advance, and the upsert does not make MariaDB heartbeats more frequent.
    text = (
        "sources:\n  - {name: inventory, kind: mariadb, port: 3306, database: inventory, "
        "user: reader, password: pw}\n"
    )
    config = load_config(write(tmp_path, text))
    generated = connector_config(config.sources[0], config)
    assert "heartbeat.action.query" not in generated
    assert generated["table.exclude.list"] == r"inventory\.cdchub_signal"  # signaling only
