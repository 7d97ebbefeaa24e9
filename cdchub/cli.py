"""The `cdchub` command line: one service function per command, one clear line per error."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cdchub.config import HubConfig, load_config
from cdchub.errors import CdcHubError, ConfigError


class _Context:
    def __init__(self, config_path: str | None, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug
        self._config: HubConfig | None = None

    @property
    def config(self) -> HubConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


def _progress(message: str) -> None:
    click.echo(message, err=True)


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=None, default=str))


def _guard(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print typed errors as one line (traceback with --debug) and exit non-zero."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context().find_object(_Context)
        try:
            return func(*args, **kwargs)
        except CdcHubError as exc:
            if ctx is not None and ctx.debug:
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@click.group()
@click.option("--config", "config_path", envvar="CDCHUB_CONFIG", help="Config file (cdchub.yaml).")
@click.option("--debug", is_flag=True, help="Print tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """cdchub: Debezium CDC from PostgreSQL and MariaDB/MySQL into SCD2 warehouse tables."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)
    ctx.obj = _Context(config_path, debug)


# -- stack ---------------------------------------------------------------------------------------


@cli.group()
def stack() -> None:
    """Run the native local stack (PostgreSQL, MariaDB, Kafka KRaft, Kafka Connect + Debezium)."""


@stack.command("up")
@click.pass_obj
@_guard
def stack_up(obj: _Context) -> None:
    """Start every component that is not running (idempotent)."""
    from infrastructure.stack.service import LocalStack

    LocalStack(obj.config).up(progress=_progress)


@stack.command("down")
@click.option("--purge", is_flag=True, help="Also delete data, logs, secrets and the warehouse.")
@click.pass_obj
@_guard
def stack_down(obj: _Context, purge: bool) -> None:
    """Stop the processes `stack up` started."""
    from infrastructure.stack.service import LocalStack

    LocalStack(obj.config).down(purge=purge, progress=_progress)


@stack.command("load-sample")
@click.argument("name", type=click.Choice(["pagila", "sakila-pg", "sakila-mysql", "northwind"]))
@click.option("--datasets", envvar="CDCHUB_DATASETS", help="Datasets dir (../shared/datasets).")
@click.pass_obj
@_guard
def stack_load_sample(obj: _Context, name: str, datasets: str | None) -> None:
    """Load a sample database into the local stack (idempotent); print its `sources:` entry."""
    from dbschemas.samples import load_sample_and_describe

    click.echo(load_sample_and_describe(obj.config, name, datasets, progress=_progress))


@stack.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
@_guard
def stack_status(obj: _Context, as_json: bool) -> None:
    """Report each component (exit 1 when one is down)."""
    from infrastructure.stack.service import LocalStack

    status = LocalStack(obj.config).status()
    if as_json:
        _emit(status)
    else:
        for name, info in status.items():
            if isinstance(info, dict) and "running" in info:
                where = (
                    info.get("url")
                    or info.get("bootstrap_servers")
                    or (f"{info.get('host')}:{info.get('port')}")
                )
                click.echo(f"{name:10} {'running' if info['running'] else 'stopped':8} {where}")
            elif isinstance(info, dict):
                click.echo(f"{name:10} {info.get('kind', '')} {info.get('path', '')}")
    components = [v for v in status.values() if isinstance(v, dict) and "running" in v]
    if not all(c["running"] for c in components):
        sys.exit(1)


# -- connectors ----------------------------------------------------------------------------------


@cli.group()
def connectors() -> None:
    """Register and inspect the Debezium connectors."""


@connectors.command("apply")
@click.pass_obj
@_guard
def connectors_apply(obj: _Context) -> None:
    """Create or update one connector per configured source and wait until it runs."""
    from connectors.service import apply_connectors

    apply_connectors(obj.config, progress=_progress)


@connectors.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def connectors_status(obj: _Context, as_json: bool) -> None:
    """Connector and task state per source (exit 1 unless all run)."""
    from connectors.service import connector_status

    report = connector_status(obj.config)
    if as_json:
        _emit(report)
    else:
        for entry in report:
            tasks = ",".join(entry["tasks"]) or "-"
            line = f"{entry['connector']:24} {entry['state']:10} tasks: {tasks}"
            click.echo(line + (f"  error: {entry['error']}" if entry.get("error") else ""))
    if not all(e["state"] == "RUNNING" and all(t == "RUNNING" for t in e["tasks"]) for e in report):
        sys.exit(1)


# -- data ----------------------------------------------------------------------------------------


@cli.command("load-demo")
@click.pass_obj
@_guard
def load_demo(obj: _Context) -> None:
    """Create the demo schemas (shop on PostgreSQL, inventory on MariaDB) with seed rows."""
    from dbschemas.loader import load_demo_schemas
    from infrastructure.stack.layout import StackLayout

    load_demo_schemas(StackLayout(obj.config), list(obj.config.sources), progress=_progress)


@cli.command()
@click.option("--rate", type=float, help="Target row changes per second.")
@click.option("--duration", type=float, help="Seconds to run.")
@click.option("--events", type=int, help="Row changes to make.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.pass_obj
@_guard
def workload(
    obj: _Context, rate: float | None, duration: float | None, events: int | None, seed: int
) -> None:
    """Run inserts, updates and deletes in transactions against every demo source."""
    from cdchub.workload import run_workload
    from infrastructure.stack.layout import StackLayout

    if duration is None and events is None:
        raise click.UsageError("give --duration or --events")
    result = run_workload(
        StackLayout(obj.config),
        list(obj.config.sources),
        rate=rate,
        duration=duration,
        events=events,
        seed=seed,
        progress=_progress,
    )
    click.echo(str(result))


@cli.command()
@click.option("--until-idle", type=float, help="Exit 0 once caught up and idle this many seconds.")
@click.option("--max-seconds", type=float, help="Stop after this many seconds.")
@click.pass_obj
@_guard
def run(obj: _Context, until_idle: float | None, max_seconds: float | None) -> None:
    """Consume every CDC topic and merge into the warehouse (Ctrl-C stops after the batch)."""
    from cdc_consumers.runner import Runner
    from cdchub.warehouses import open_session
    from observability.service import instrumented

    session = open_session(obj.config)
    try:
        with instrumented(obj.config, session, progress=_progress) as instrumentation:
            runner = Runner(
                obj.config, session, progress=_progress, instrumentation=instrumentation
            )
            result = runner.run(until_idle=until_idle, max_seconds=max_seconds)
    finally:
        session.close()
    click.echo(
        f"applied {result.events} events ({result.versions} new versions) in {result.batches} "
        f"batches, {result.elapsed_s:.1f}s; stopped by {result.stopped_by}"
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def tables(obj: _Context, as_json: bool) -> None:
    """List replicated tables and where they live in the warehouse."""
    from cdchub.catalog import replicated_tables
    from cdchub.warehouses import open_session

    session = open_session(obj.config, read_only=True)
    try:
        found = replicated_tables(session)
    finally:
        session.close()
    if as_json:
        _emit([t.to_json() for t in found])
        return
    for t in found:
        click.echo(
            f"{t.source}.{t.source_schema}.{t.source_table} -> "
            f"{t.warehouse_schema}.{t.current_table}, {t.warehouse_schema}.{t.history_table} "
            f"(key: {', '.join(t.key_columns)})"
        )


@cli.group()
def schema() -> None:
    """Schema evolution: resume a table stopped by an incompatible column type change."""


@schema.command("accept")
@click.argument("table")
@click.pass_obj
@_guard
def schema_accept(obj: _Context, table: str) -> None:
    """Accept TABLE's warehouse columns as altered by hand; its held changes apply on the next run."""
    from cdchub.schema_admin import accept_schema
    from cdchub.warehouses import open_session

    session = open_session(obj.config)
    try:
        found = accept_schema(session, table)
    finally:
        session.close()
    click.echo(
        f"accepted {found.warehouse_schema}.{found.current_table}: restart `cdchub run` to apply "
        "its held changes"
    )


@cli.command()
@click.argument("table")
@click.option(
    "--at",
    "at",
    required=True,
    help="The instant, ISO 8601 (e.g. 2026-11-25T18:00:00Z); without a zone it is UTC.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
@click.option("--limit", type=int, default=None, help="Print at most this many rows.")
@click.pass_obj
@_guard
def asof(obj: _Context, table: str, at: str, as_json: bool, limit: int | None) -> None:
    """Print the rows TABLE held at an instant, from its history (e.g. `asof shop.orders --at …`)."""
    from cdchub.history import find_table, rows_as_of
    from cdchub.warehouses import open_session

    try:
        instant = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"--at {at!r} is not an ISO 8601 instant: {exc}") from exc
    session = open_session(obj.config, read_only=True)
    try:
        columns, rows = rows_as_of(session, find_table(session, table), instant)
    finally:
        session.close()
    rows = rows[:limit] if limit is not None else rows
    if as_json:
        for row in rows:
            _emit(dict(zip(columns, row, strict=True)))
        return
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join("" if v is None else str(v) for v in row))
    _progress(f"{len(rows)} rows of {table} as of {instant.isoformat()}")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--ranges", type=click.IntRange(min=1), help="Also checksum N primary-key ranges.")
@click.pass_obj
@_guard
def verify(obj: _Context, as_json: bool, ranges: int | None) -> None:
    """Compare every replicated table with its source and check history (exit 1 on mismatch)."""
    from cdchub.verify import verify_all
    from cdchub.warehouses import open_session
    from observability.checks import drift_json, store_checks
    from observability.range_checksum import all_ranges
    from observability.schema_drift import schema_drift

    session = open_session(obj.config)  # writable: results are kept in _cdchub.checks
    try:
        report = verify_all(session, obj.config)
        drift = schema_drift(session, obj.config)
        report["ranges"] = all_ranges(session, obj.config, ranges) if ranges else []
        store_checks(session, report, drift, report["ranges"])
        report["schema_drift"] = drift_json(drift)
    finally:
        session.close()
    if as_json:
        _emit(report)
    else:
        for entry in report["tables"]:
            mark = "OK  " if entry["ok"] else "FAIL"
            click.echo(
                f"{mark} {entry['source']}.{entry['table']}: source {entry['source_rows']} rows, "
                f"warehouse {entry['warehouse_rows']}; missing {entry['missing_keys']}, "
                f"unexpected {entry['unexpected_keys']}, different {entry['different_rows']}; "
                f"history violations {sum(entry['history'].values())}"
                + (f"; error: {entry['error']}" if entry["error"] else "")
            )
        for d in report["schema_drift"]:
            if not d["ok"]:
                click.echo(f"DRIFT {d['source']}.{d['table']}: {json.dumps(d, default=str)}")
        for r in report["ranges"]:
            for m in r["mismatched"]:
                click.echo(f"RANGE {r['source']}.{r['table']}: keys {m['from']}..{m['to']} differ")
        click.echo("verify: " + ("ok" if report["ok"] else "FAILED"))
    if not report["ok"]:
        sys.exit(1)


@cli.command("render-sql")
@click.option(
    "--warehouse",
    "kind",
    type=click.Choice(["duckdb", "postgres", "snowflake"]),
    default="duckdb",
    show_default=True,
)
@click.option("--table", "table", required=True, help="source.namespace.table or schema.table.")
@click.option("--columns", help='Instead of the demo schemas: "id:int64, price:decimal(12,2)".')
@click.option("--key", help="Key columns of --columns, comma-separated.")
@_guard
def render_sql(kind: str, table: str, columns: str | None, key: str | None) -> None:
    """Print the statements of one batch for one table, rendered for a warehouse (no database)."""
    from cdchub.demo_tables import find_demo_table, parse_columns
    from cdchub.render_sql import render_plan

    shape = parse_columns(table, columns, key or "") if columns else find_demo_table(table)
    click.echo(render_plan(kind, shape))


@cli.group()
def bench() -> None:
    """Benchmarks that print figures (they assert nothing)."""


@bench.command("merge")
@click.option(
    "--warehouse",
    "kind",
    type=click.Choice(["duckdb", "postgres", "snowflake"]),
    default="duckdb",
    show_default=True,
)
@click.option("--events", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--batch", type=click.IntRange(1), default=1_000, show_default=True)
@click.option("--keys", type=click.IntRange(1), default=2_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def bench_merge(
    obj: _Context, kind: str, events: int, batch: int, keys: int, seed: int, as_json: bool
) -> None:
    """Merge throughput on synthetic inserts/updates/deletes: events/s, batch p50/p95, peak RSS."""
    from cdchub.bench import bench_merge as run_bench

    result = run_bench(obj.config, kind, events=events, batch=batch, keys=keys, seed=seed)
    click.echo(json.dumps(result.to_json()) if as_json else result.describe())


@bench.command("catchup")
@click.option(
    "--events",
    type=click.IntRange(1000),
    default=400_000,
    show_default=True,
    help="Row changes in the backlog (60% snapshot rows, the rest multi-table transactions).",
)
@click.option(
    "--warehouse",
    "kind",
    type=click.Choice(["duckdb", "postgres"]),
    default="duckdb",
    show_default=True,
)
@click.option(
    "--transaction-consistent/--no-transaction-consistent",
    default=True,
    show_default=True,
    help="The source's transaction_consistent setting for the timed run.",
)
@click.option(
    "--compare-consistency",
    is_flag=True,
    help="Then time a second fresh run with the other transaction-consistency mode.",
)
@click.option("--peer", is_flag=True, help="Also time Debezium's JDBC sink on the same topics.")
@click.option(
    "--profile",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Sample the timed run with py-spy into this file (collapsed stacks).",
)
@click.option("--json", "as_json", is_flag=True)
@_guard
def bench_catchup(
    events: int,
    kind: str,
    transaction_consistent: bool,
    compare_consistency: bool,
    peer: bool,
    profile: Path | None,
    as_json: bool,
) -> None:
    """Catch-up on a private stack: events/s of a fresh run, peak RSS, time split, verify."""
    from cdchub.bench_catchup import bench_catchup as run_bench

    results = run_bench(
        events=events,
        warehouse=kind,
        transaction_consistent=transaction_consistent,
        compare_consistency=compare_consistency,
        peer=peer,
        profile=profile.resolve() if profile else None,
        progress=_progress,
    )
    for result in results:
        click.echo(json.dumps(result.to_json()) if as_json else result.describe())
    if any(not r.verify_ok or (r.peer is not None and not r.peer.equal) for r in results):
        sys.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--window", default="15m", show_default=True, help="Percentile window: 90s, 15m, 1h.")
@click.pass_obj
@_guard
def lag(obj: _Context, as_json: bool, window: str) -> None:
    """Current replication lag per table, percentiles over a window, and Kafka consumer lag."""
    from observability.access import lag_report, parse_window
    from observability.service import describe_lag

    report = lag_report(obj.config, parse_window(window))
    if as_json:
        for table in report["tables"]:
            table.pop("series", None)
        _emit(report)
    else:
        click.echo(describe_lag(report))


@cli.command()
@click.option("--port", type=int, help="Port on 127.0.0.1 (default: observability.dashboard.port).")
@click.pass_obj
@_guard
def dashboard(obj: _Context, port: int | None) -> None:
    """Serve the lag dashboard (per table: lag chart, throughput, consumer lag, checks)."""
    from observability.service import serve_dashboard

    serve_dashboard(obj.config, port, progress=_progress)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (last line).")
@click.option("--events", type=int, default=3000, show_default=True, help="Workload row changes.")
@click.option("--rate", type=float, default=400.0, show_default=True, help="Changes per second.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.pass_obj
@_guard
def demo(obj: _Context, as_json: bool, events: int, rate: float, seed: int) -> None:
    """Stack up, schemas, connectors, workload, replicate, verify, summarise."""
    from cdchub.demo import run_demo

    summary = run_demo(obj.config, events=events, rate=rate, seed=seed, progress=_progress)
    if as_json:
        _emit(summary)
    else:
        from cdchub.demo import describe

        click.echo(describe(summary))
    if not summary["ok"]:
        sys.exit(1)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
