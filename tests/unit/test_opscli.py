"""Everyday CLI behaviour that needs no server: init, --version, -h, global options after the
subcommand, `connectors apply --dry-run`, backfill argument checks, signal SQL, plain progress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cdchub.backfill import parse_condition, resolve_table
from cdchub.cli import hoist_global_options
from cdchub.progress import progress_bar
from connectors import signals
from core.config import load_config
from core.errors import ConfigError

CONFIG = """
sources:
  - {name: shop, kind: postgres, port: 5432, database: shop, user: cdc, password_file: missing.pw,
     tables: [public.orders, public.customers]}
  - {name: inventory, kind: mariadb, port: 3306, database: inventory, user: cdc,
     password_file: missing.pw}
"""


def cdchub(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cdchub.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def write(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "cdchub.yaml"
    path.write_text(text)
    return path


def test_global_options_are_hoisted_from_after_the_subcommand() -> None:
    assert hoist_global_options(["verify", "--config", "x.yaml", "--json"]) == [
        "--config",
        "x.yaml",
        "verify",
        "--json",
    ]
    assert hoist_global_options(["lag", "--debug", "--config=y.yaml"]) == [
        "--debug",
        "--config=y.yaml",
        "lag",
    ]
    assert hoist_global_options(["sql", "--", "--debug"]) == ["sql", "--", "--debug"]


def test_version_and_short_help() -> None:
    done = cdchub("--version")
    assert done.returncode == 0 and done.stdout.startswith("cdchub, version ")
    done = cdchub("connectors", "-h")
    assert done.returncode == 0 and "pause" in done.stdout and "delete" in done.stdout


def test_config_after_the_subcommand_is_used(tmp_path: Path) -> None:
    config = write(tmp_path)
    done = cdchub("connectors", "apply", "--dry-run", "--config", str(config))
    assert done.returncode == 0, done.stderr
    planned = json.loads(done.stdout)
    assert [p["connector"] for p in planned] == ["cdchub-shop", "cdchub-inventory"]
    # The password file does not exist: a dry run never reads secrets, it masks them.
    assert all(p["config"]["database.password"] == "********" for p in planned)
    shop = planned[0]["config"]
    assert shop["signal.data.collection"] == "public.cdchub_signal"
    assert shop["notification.sink.topic.name"] == "__debezium-notification.shop"
    assert planned[1]["config"]["signal.data.collection"] == "inventory.cdchub_signal"
    # The signaling table's own change records are dropped before Kafka.
    assert shop["predicates.cdchubIsSignal.pattern"] == r"shop\.public\.cdchub_signal"
    assert shop["transforms.cdchubDropSignals.predicate"] == "cdchubIsSignal"
    done = cdchub(
        "connectors",
        "apply",
        "--dry-run",
        "--source",
        "inventory",
        "--json",
        "--config",
        str(config),
    )
    assert [p["source"] for p in json.loads(done.stdout)] == ["inventory"]


def test_a_missing_config_is_one_line_exit_2(tmp_path: Path) -> None:
    done = cdchub("status", "--config", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: config file not found")
    assert done.stderr.strip().count("\n") == 0 and done.stdout == ""


def test_init_writes_a_config_and_prints_admin_sql(tmp_path: Path) -> None:
    done = cdchub(
        "init",
        "--source",
        "shop=postgres://cdc_reader@db.internal:5433/shop",
        "--tables",
        "public.orders,public.customers",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote cdchub.yaml" in done.stderr
    sql = done.stdout
    assert 'CREATE ROLE "cdc_reader" WITH LOGIN REPLICATION' in sql
    assert (
        'CREATE PUBLICATION "cdchub_shop" FOR TABLE "public"."orders", "public"."customers"' in sql
    )
    assert 'ALTER PUBLICATION "cdchub_shop" ADD TABLE "public"."cdchub_signal";' in sql
    config = load_config_with_env(tmp_path / "cdchub.yaml", SHOP_CDC_PASSWORD="s3cret")
    shop = config.sources[0]
    assert (shop.host, shop.port, shop.database, shop.user) == (
        "db.internal",
        5433,
        "shop",
        "cdc_reader",
    )
    assert shop.tables == ["public.orders", "public.customers"]
    assert shop.secret() == "s3cret"
    # An existing file is kept; a password in the URL is refused: both one line, exit 2.
    again = cdchub("init", "--source", "shop=postgres://cdc@db/shop", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    secret = cdchub("init", "--source", "x=mysql://u:pw@db/x", "--output", "b.yaml", cwd=tmp_path)
    assert secret.returncode == 2 and "password" in secret.stderr and "pw" not in secret.stdout
    maria = cdchub(
        "init",
        "--json",
        "--source",
        "inv=mariadb://cdc@db/inventory",
        "--output",
        "m.yaml",
        cwd=tmp_path,
    )
    assert maria.returncode == 0, maria.stderr
    doc = json.loads(maria.stdout)
    assert (
        "GRANT SELECT, INSERT, DELETE ON `inventory`.`cdchub_signal` TO 'cdc'@'%';"
        in doc["admin_sql"]
    )


def test_init_kafka_and_connect_go_into_the_config(tmp_path: Path) -> None:
    done = cdchub(
        "init",
        "--source",
        "shop=postgres://cdc_reader@db.internal/shop",
        "--kafka",
        "kafka.internal:9092",
        "--connect",
        "http://connect.internal:8083",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    config = load_config_with_env(tmp_path / "cdchub.yaml", SHOP_CDC_PASSWORD="x")
    assert config.kafka.bootstrap_servers == "kafka.internal:9092"
    assert config.connect.url == "http://connect.internal:8083"
    # Without them, the local stack's (as the README row says).
    cdchub("init", "--source", "s=postgres://u@h/d", "--output", "d.yaml", cwd=tmp_path)
    defaults = load_config_with_env(tmp_path / "d.yaml", S_CDC_PASSWORD="x")
    assert defaults.kafka.bootstrap_servers == "127.0.0.1:29092"
    assert defaults.connect.url == "http://127.0.0.1:28083"


def load_config_with_env(path: Path, **env: str):  # type: ignore[no-untyped-def]
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return load_config(path)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_backfill_table_and_condition_checks(tmp_path: Path) -> None:
    config = load_config(write(tmp_path))
    target = resolve_table(config, "shop.orders")
    assert (target.collection, target.topic) == ("public.orders", "shop.public.orders")
    assert resolve_table(config, "inventory.stock_levels").collection == "inventory.stock_levels"
    with pytest.raises(ConfigError, match="not replicated"):
        resolve_table(config, "shop.payments")
    with pytest.raises(ConfigError, match="no source named"):
        resolve_table(config, "nosuch.orders")
    with pytest.raises(ConfigError, match=r"<source>\.<table>"):
        resolve_table(config, "orders")
    assert parse_condition(target, "order_id > 100 AND status = 'paid'") == (
        "order_id > 100 AND status = 'paid'"
    )
    for bad in ("1; DROP TABLE x", "SELECT 1", "order_id >"):
        with pytest.raises(ConfigError):
            parse_condition(target, bad)


def test_signal_sql_is_quoted_per_dialect(tmp_path: Path) -> None:
    config = load_config(write(tmp_path))
    shop, inventory = config.sources
    data = signals.snapshot_signal("public.orders", "order_id > 5")
    assert data["additional-conditions"] == [
        {"data-collection": "public.orders", "filter": "order_id > 5"}
    ]
    sql = signals.insert_signal(shop, "id-1", "execute-snapshot", data)
    assert sql.startswith('INSERT INTO "public"."cdchub_signal" ("id", "type", "data") VALUES')
    assert "order_id > 5" in sql
    assert signals.insert_signal(inventory, "id", "x", {}).startswith(
        "INSERT INTO `inventory`.`cdchub_signal`"
    )


def test_plain_progress_prints_on_change_only(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar("drain", force_plain=True) as bar:
        bar.every_s = 0  # type: ignore[attr-defined]
        for done in (0, 0, 0, 5, 5, 9):
            bar(done, 9)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["drain: 0/9", "drain: 5/9", "drain: 9/9"]


def test_status_screen_names_what_needs_a_person(tmp_path: Path) -> None:
    from cdchub.status import Status, describe, stack_is_local

    # The defaults point at the local stack's ports; another Kafka is not local.
    config = load_config(write(tmp_path))
    assert stack_is_local(config)
    remote = config.model_copy(
        update={"kafka": config.kafka.model_copy(update={"bootstrap_servers": "kafka:9092"})}
    )
    assert not stack_is_local(remote)
    status = Status(
        stack={"kafka": {"running": True}, "connect": {"running": True}},
        connectors=[{"connector": "cdchub-shop", "state": "RUNNING", "tasks": ["RUNNING"]}],
        run={
            "alive": True,
            "group": "cdchub",
            "lease": {"alive": True, "holders": ["host h pid 1"]},
        },
        tables=[
            {
                "table": "shop.public.orders",
                "state": "stopped by schema change",
                "last_applied_commit": "2026-11-30T12:00:00+00:00",
                "lag_s": 3.5,
                "kafka_consumer_lag": 0,
                "history_versions": 42,
                "verify_ok": False,
            }
        ],
        problems=["shop.public.orders: stopped by an incompatible schema change"],
    )
    text = describe(status)
    assert "cdchub run: alive (group cdchub; lease: host h pid 1)" in text
    assert "STOPPED" in text and "FAILED" in text and "42" in text
    assert text.endswith("  - shop.public.orders: stopped by an incompatible schema change")
    assert status.to_json()["ok"] is False
    assert describe(Status(run={"alive": False, "group": "g"})).endswith("status: ok")
