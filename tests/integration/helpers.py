"""Helpers for the integration tests: run the consumer, read tables, compare histories."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import yaml
from psycopg import sql

from cdc_consumers.runner import Runner
from connectors.warehouses import open_session
from connectors.warehouses.postgres.client import PostgresSession
from core.config import DuckDBWarehouse, HubConfig, PostgresWarehouse, SourceConfig, load_config
from core.results import RunResult
from merge import client_sql
from merge.naming import CONTROL_SCHEMA
from ops.access import QueryTicket
from ops.verify import verify_all


def pg_source(stack: Any, database: str, **update: Any) -> SourceConfig:
    """A PostgreSQL source named after `database` on the test stack, read as its CDC user."""
    return SourceConfig(
        name=database,
        kind="postgres",
        port=stack.config.stack.ports.postgres,
        database=database,
        user=stack.layout.pg_cdc.user,
        password_file=stack.layout.pg_cdc.password_file,
    ).model_copy(update=update)


def with_warehouse(config: HubConfig, path: Path, group: str) -> HubConfig:
    """The same stack and sources, another warehouse file and consumer group."""
    return config.model_copy(
        update={
            "warehouse": DuckDBWarehouse(path=path),
            "kafka": config.kafka.model_copy(update={"group_id": group}),
        }
    )


def run_until_idle(config: HubConfig, idle: float = 4.0, max_seconds: float = 600) -> RunResult:
    """Consume everything there is, in this process."""
    session = open_session(config)
    try:
        return Runner(config, session, progress=lambda _m: None).run(
            until_idle=idle, max_seconds=max_seconds, handle_signals=False
        )
    finally:
        session.close()


def replicate_until_verified(config: HubConfig, timeout: float = 240.0) -> dict[str, Any]:
    """Consume until `verify` passes or `timeout` runs out; return the last report.

    Debezium's initial snapshot runs in the background after `connectors apply`: a consumer that is
    caught up may still see more tables arrive. The final report must be exact either way.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = run_until_idle(config, max_seconds=max(10.0, deadline - time.monotonic()))
        report = verify(config)
        if report["ok"]:
            return report
        if time.monotonic() > deadline:
            # Printed so that a failing test shows why (pytest shows a failed test's stdout).
            print(
                f"replicate_until_verified: not verified after {timeout}s; the last run stopped "
                f"by {result.stopped_by}, waiting for {result.waiting}; differences: "
                f"{failures(report)}"
            )
            return report
        time.sleep(2)


def verify(config: HubConfig) -> dict[str, Any]:
    """`cdchub verify` as a function."""
    session = open_session(config, read_only=True)
    try:
        return verify_all(session, config)
    finally:
        session.close()


def failures(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The failing tables of a verify report (for assertion messages)."""
    return [t for t in report["tables"] if not t["ok"]]


def histories(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every history table, all columns but `_cdc_ingested_at`, in key/position order."""
    conn = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        tables = conn.execute(
            "SELECT warehouse_schema, history_table FROM _cdchub.tables ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            cols = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                    "AND table_name = ? AND column_name <> '_cdc_ingested_at' "
                    "ORDER BY ordinal_position",
                    [schema, table],
                ).fetchall()
            ]
            select = ", ".join(f'"{c}"' for c in cols)
            rows = conn.execute(
                f'SELECT {select} FROM "{schema}"."{table}" ORDER BY ALL'
            ).fetchall()
            out[f"{schema}.{table}"] = rows
        return out
    finally:
        conn.close()


def config_file(
    stack: Any, tmp: Path, name: str, warehouse: dict[str, Any], **top: Any
) -> tuple[Path, HubConfig]:
    """The stack's config file with another warehouse, as a user writes it: `<tmp>/<name>.yaml`.

    Its own consumer group (`it-<name>`) and state directory (the run's endpoint ticket lives
    there); free ports for the run's dashboard and metrics, never the default ones a user's run may
    hold. `top` sets further top-level keys (e.g. `dead_letters={...}`).
    """
    doc = yaml.safe_load(stack.config_path.read_text())
    doc["warehouse"] = warehouse
    doc["kafka"]["group_id"] = f"it-{name}"
    doc["state_dir"] = str(tmp / "state")
    observability = doc.setdefault("observability", {})
    observability.setdefault("dashboard", {})["port"] = 0
    observability.setdefault("prometheus", {})["port"] = 0
    doc.update(top)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, load_config(path)


def duckdb_config_file(stack: Any, tmp: Path, name: str, **top: Any) -> tuple[Path, HubConfig]:
    """A config file on a fresh DuckDB warehouse `<tmp>/<name>.duckdb` (see `config_file`)."""
    warehouse = {"kind": "duckdb", "path": str(tmp / f"{name}.duckdb")}
    return config_file(stack, tmp, name, warehouse, **top)


def pg_warehouse_config_file(stack: Any, tmp: Path, name: str) -> tuple[Path, HubConfig]:
    """A config file on the stack's PostgreSQL warehouse database (emptied), as a user writes it.

    See `config_file`. The warehouse database is shared by the session's PostgreSQL-warehouse
    tests, so the demo schemas and the control schema are dropped first.
    """
    warehouse: PostgresWarehouse = stack.layout.pg_warehouse_config()
    path, config = config_file(
        stack,
        tmp,
        name,
        {
            "kind": "postgres",
            "host": warehouse.host,
            "port": warehouse.port,
            "database": warehouse.database,
            "user": warehouse.user,
            "password_file": str(warehouse.password_file),
        },
    )
    session = PostgresSession(warehouse)
    try:
        for schema in ("shop", "inventory", CONTROL_SCHEMA):
            session.execute(client_sql.drop_schema(schema))
    finally:
        session.close()
    return path, config


def pg_warehouse(config: HubConfig) -> psycopg.Connection:
    """A connection to a PostgreSQL warehouse (autocommit), for a test to read or alter it."""
    w = config.warehouse
    assert isinstance(w, PostgresWarehouse)
    return psycopg.connect(
        host=w.host,
        port=w.port,
        dbname=w.database,
        user=w.user,
        password=w.secret(),
        autocommit=True,
    )


def pg_history(config: HubConfig, table: str, *, ingested_at: bool = True) -> list[tuple[Any, ...]]:
    """Every row of a PostgreSQL warehouse history table (`shop.orders_history`), stable order;
    every column, or all but `_cdc_ingested_at` (a rebuild writes the rows again)."""
    schema, name = table.split(".")
    with pg_warehouse(config) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s ORDER BY ordinal_position",
                (schema, name),
            ).fetchall()
            if ingested_at or r[0] != "_cdc_ingested_at"
        ]
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier(schema, name)
        )
        rows = conn.execute(query).fetchall()
    return sorted(rows, key=repr)


def wait_for_own_ticket(
    run: subprocess.Popen[str],
    config: HubConfig,
    timeout: float = 120.0,
    state: Callable[[], str] = lambda: "",
) -> Path:
    """Until the background `cdchub run` process `run` has published its own query ticket; the
    ticket's path. A ticket from another pid is not it: a run killed earlier on the shared stack
    may have left one. Fails with `state()` when the run exits or the time is up."""
    ticket = QueryTicket.path(config)
    deadline = time.monotonic() + timeout
    while (found := QueryTicket.read(ticket)) is None or found.pid != run.pid:
        assert run.poll() is None, f"cdchub run exited before serving its endpoint\n{state()}"
        assert time.monotonic() < deadline, f"cdchub run never served its endpoint\n{state()}"
        time.sleep(0.5)
    return ticket
