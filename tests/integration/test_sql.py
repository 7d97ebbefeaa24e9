"""SQL over history on the real stack.

- `cdchub sql --as-of T` returns, for every replicated table, exactly the rows the source held at T
  (the oracle: each source table read at T while the workload is paused), on the DuckDB and on the
  PostgreSQL warehouse.
- `cdchub sql` answers while `cdchub run` (a real second process) holds the DuckDB file.
- Every SQL block of docs/analytics.md runs on the demo warehouse, with checks of what it claims.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cdchub.cli import cli
from cdchub.query import run_sql
from connectors.warehouses import open_session
from core.config import HubConfig
from dbschemas.workload import run_workload
from ops.access import QueryTicket
from ops.catalog import replicated_tables, warehouse_types
from ops.verify import diff_rows
from tests.integration.conftest import Stack
from tests.integration.helpers import (
    replicate_until_verified,
    run_until_idle,
    wait_for_own_ticket,
)
from tests.integration.test_asof import source_state, warehouse

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "analytics.md"


def config_file(config: HubConfig, path: Path) -> Path:
    """A cdchub.yaml for `config` (the CLI is run as a user runs it, with --config)."""
    doc = json.loads(config.model_dump_json(by_alias=True, exclude={"config_path"}))
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _cli(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_sql_as_of_equals_the_source_then(stack: Stack, kind: str, tmp_path: Path) -> None:
    config = warehouse(stack, kind)
    assert replicate_until_verified(config)["ok"]
    instants: list[tuple[dt.datetime, dict[Any, Any]]] = []
    for burst in range(2):
        run_workload(
            stack.layout,
            list(stack.config.sources),
            rate=None,
            duration=None,
            events=200,
            seed=300 + burst,
            progress=lambda _m: None,
        )
        at = dt.datetime.now(dt.UTC)
        instants.append((at, source_state(config)))
        # MariaDB commit times are whole seconds: wait out the second holding `at`.
        time.sleep(math.ceil(at.timestamp()) - at.timestamp() + 0.2)
    run_until_idle(config)

    session = open_session(config, read_only=True)
    try:
        tables = replicated_tables(session)
        compared = 0
        for at, state in instants:
            for t in tables:
                src_columns, src_rows = state[(t.source, t.source_schema, t.source_table)]
                query = f"SELECT * FROM {t.warehouse_schema}.{t.current_table}"
                result = run_sql(session, query, at)  # type: ignore[arg-type]
                meta = [c for c in result.columns if c.startswith("_cdc_")]
                columns = [c for c in result.columns if not c.startswith("_cdc_")]
                assert set(columns) == set(src_columns), t
                assert meta == ["_cdc_valid_from", "_cdc_op", "_cdc_source_pos", "_cdc_tx_id",
                                "_cdc_ingested_at"]  # fmt: skip
                # By name: a column added by a schema change comes after the `_cdc_` columns.
                at_index = [result.columns.index(c) for c in columns]
                rows = [tuple(r[i] for i in at_index) for r in result.rows]
                positions = [src_columns.index(c) for c in columns]
                expected = [tuple(r[i] for i in positions) for r in src_rows]
                types = warehouse_types(session, t.warehouse_schema, t.current_table)
                diff = diff_rows(columns, expected, rows, t.key_columns, types)
                assert diff.equal, (at, t.warehouse_schema, t.current_table, diff)
                compared += len(expected)
        assert compared > 0
        # And through the command line, as a user types it: one JSON document.
        at, state = instants[0]
        cols, src_rows = state[("shop", "public", "orders")]
        path = config_file(config, tmp_path / "cdchub.yaml")
        out = _cli(path, "sql", "SELECT order_id, status FROM shop.orders ORDER BY order_id",
                   "--as-of", at.isoformat(), "--format", "json")  # fmt: skip
        assert out.exit_code == 0, out.output
        expected_status = sorted(
            (r[cols.index("order_id")], r[cols.index("status")]) for r in src_rows
        )
        assert [(r["order_id"], r["status"]) for r in json.loads(out.stdout)] == expected_status
        if kind == "postgres":  # the command's connection is read-only on PostgreSQL too
            reader = open_session(config, read_only=True)
            try:
                got = run_sql(reader, "SELECT current_setting('transaction_read_only') AS ro")  # type: ignore[arg-type]
            finally:
                reader.close()
            assert got.rows == [("on",)]
    finally:
        session.close()


def test_sql_answers_while_run_is_running(stack: Stack, tmp_path: Path) -> None:
    config = stack.config.model_copy(
        update={
            "observability": stack.config.observability.model_copy(
                update={
                    "prometheus": stack.config.observability.prometheus.model_copy(
                        update={"enabled": False}
                    ),
                    "dashboard": stack.config.observability.dashboard.model_copy(
                        update={"port": 0}
                    ),
                }
            )
        }
    )
    assert replicate_until_verified(config)["ok"]
    path = config_file(config, tmp_path / "cdchub.yaml")
    ticket = QueryTicket.path(config)
    # stderr to a file, not a pipe: a pipe nobody reads fills and blocks the run's logging.
    log = (tmp_path / "run.stderr").open("w")
    run = subprocess.Popen(
        [sys.executable, "-m", "cdchub.cli", "--config", str(path), "run", "--max-seconds", "240"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for_own_ticket(run, config, 120, lambda: _run_state(run, log.name))
        run_workload(stack.layout, list(stack.config.sources), rate=200.0, duration=None,
                     events=300, seed=77, progress=lambda _m: None)  # fmt: skip
        query = "SELECT count(*) AS n, max(_cdc_ingested_at) AS last FROM shop.orders_history"
        seen = []
        for _ in range(3):
            out = _cli(path, "sql", query, "--format", "json")
            assert out.exit_code == 0, f"{out.output}\n{_run_state(run, log.name)}"
            seen.append(json.loads(out.stdout)[0]["n"])
            time.sleep(1)
        # The run was holding the file all along; if it stopped, its error says why.
        assert run.poll() is None, _run_state(run, log.name)
        out = _cli(path, "tables", "--json")
        assert out.exit_code == 0, out.output
        assert len(json.loads(out.stdout)) >= 9
        out = _cli(path, "asof", "shop.orders", "--at", "now", "--json")
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)
        out = _cli(path, "verify", "--json")
        assert out.exit_code in (0, 1), out.output  # it runs; mid-workload it may lag the source
        assert "results not stored" in out.stderr
    finally:
        run.terminate()
        run.wait(timeout=60)
        log.close()
    assert not ticket.exists()
    run_until_idle(config)
    session = open_session(config, read_only=True)
    try:
        (count,) = run_sql(session, "SELECT count(*) FROM shop.orders_history").rows[0]  # type: ignore[arg-type]
    finally:
        session.close()
    assert seen == sorted(seen) and seen[-1] <= count


def _run_state(run: subprocess.Popen[str], stderr_file: str) -> str:
    """How the background `cdchub run` stands, with its stderr: what a failed assertion needs."""
    code = run.poll()
    if code is None:  # still running: stop it to read what it printed so far
        run.terminate()
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
        state = f"cdchub run was still running (stopped now, exit {run.returncode})"
    else:
        state = f"cdchub run had exited with {code}"
    return f"{state}; its stderr:\n{Path(stderr_file).read_text()[-20000:]}"


def doc_queries() -> dict[str, str]:
    """Every ```sql block of docs/analytics.md, by its `-- name:` line."""
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S)
    named = {}
    for block in blocks:
        match = re.match(r"-- name: (\w+)\n", block)
        assert match, f"a SQL block in {DOC.name} has no `-- name:` line: {block[:60]!r}"
        named[match.group(1)] = block
    return named


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_analytics_doc_queries_run_on_the_demo_warehouse(
    stack: Stack, kind: str, tmp_path: Path
) -> None:
    config = warehouse(stack, kind)
    assert replicate_until_verified(config)["ok"]
    run_workload(stack.layout, list(stack.config.sources), rate=None, duration=None, events=600,
                 seed=5, progress=lambda _m: None)  # fmt: skip
    assert replicate_until_verified(config)["ok"]
    path = config_file(config, tmp_path / "cdchub.yaml")
    out = _cli(path, "views")
    assert out.exit_code == 0, out.output
    queries = doc_queries()
    assert set(queries) >= {
        "status_durations", "price_when_ordered", "email_changes", "email_changes_view",
        "daily_snapshot", "orders_by_status", "most_changed_products",
    }  # fmt: skip
    results: dict[str, list[dict[str, Any]]] = {}
    for name, sql in queries.items():
        # The blocks start with a `--` comment: as a user would, pass it after `--`.
        out = _cli(path, "sql", "--format", "json", "--", sql)
        assert out.exit_code == 0, (name, out.output)
        results[name] = json.loads(out.stdout)
        assert results[name], f"{name} returned no rows on the demo warehouse"

    session = open_session(config, read_only=True)
    try:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return run_sql(session, sql).rows  # type: ignore[arg-type]

        # status_durations: a stay is a maximal stretch of one status in an order's versions
        # (counted here in Python); the stays still open are the current orders in that status.
        history = rows(
            "SELECT order_id, status FROM shop.orders_history ORDER BY order_id, _cdc_source_pos"
        )
        stays: Counter[str] = Counter()
        previous: tuple[Any, Any] | None = None
        for order_id, status in history:
            if previous != (order_id, status):
                stays[str(status)] += 1
            previous = (order_id, status)
        current_status = dict(rows("SELECT status, count(*) FROM shop.orders GROUP BY status"))
        by_status = {r["status"]: r for r in results["status_durations"]}
        assert set(by_status) == set(stays)
        for status, count in stays.items():
            got = by_status[status]
            assert got["completed_stays"] + got["still_in_status"] == count, status
            assert got["still_in_status"] == current_status.get(status, 0), status

        # price_when_ordered: equal to the list price, except where the order's own transaction
        # repriced the product.
        same_tx = {
            (r[0], r[1])
            for r in rows(
                "SELECT o.order_id, p.product_id FROM shop.orders_history AS o "
                "JOIN shop.products_history AS p ON p._cdc_tx_id = o._cdc_tx_id "
                "WHERE o._cdc_op = 'c' AND p._cdc_op = 'u'"
            )
        }
        lines = results["price_when_ordered"]
        assert lines
        for line in lines:
            if not line["charged_list_price"]:
                assert (line["order_id"], line["product_id"]) in same_tx, line
            assert Decimal(line["unit_price"]) > 0

        # email_changes: the view and the window query agree; the last change is the current e-mail.
        def key(r: dict[str, Any]) -> tuple[Any, ...]:
            return (r["customer_id"], r["old_email"], r["new_email"])

        assert sorted(map(key, results["email_changes"])) == sorted(
            map(key, results["email_changes_view"])
        )
        current = dict(rows("SELECT customer_id, email FROM shop.customers"))
        last_change = {r["customer_id"]: r["new_email"] for r in results["email_changes"]}
        for customer, email in last_change.items():
            if customer in current:
                assert current[customer] == email
            assert email

        # daily_snapshot: the last day's snapshot (its end is still ahead) is the current state.
        last_day = max(r["day"] for r in results["daily_snapshot"])
        snapshot = {
            r["status"]: r["orders"] for r in results["daily_snapshot"] if r["day"] == last_day
        }
        now = dict(rows("SELECT status, count(*) FROM shop.orders GROUP BY status"))
        assert snapshot == {str(k): v for k, v in now.items()}

        # most_changed_products: versions per key equal the history's count per key.
        counts = dict(rows("SELECT product_id, count(*) FROM shop.products_history GROUP BY 1"))
        for r in results["most_changed_products"]:
            assert r["versions"] == counts[r["product_id"]]
        assert results["orders_by_status"]
    finally:
        session.close()
