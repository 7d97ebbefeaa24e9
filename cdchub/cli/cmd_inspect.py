"""What an operator reads: `status`, `lag`, `verify`, `tables`, `dashboard`."""

from __future__ import annotations

import json
import sys

import click

from cdchub.cli.app import cli
from cdchub.cli.output import (
    EXIT_CHECK_FAILED,
    CliContext,
    emit,
    guard,
    json_option,
    note,
    open_reader_or_none,
)


@cli.command()
@json_option("Print one JSON document.")
@click.option("--window", default="15m", show_default=True, help="Lag percentile window.")
@click.pass_obj
@guard
def status(obj: CliContext, as_json: bool, window: str) -> None:
    """One screen: stack, connectors, the run, and per table state, lag, versions, verify (exit 1
    when something needs a person)."""
    from cdchub.status import collect_status, describe
    from ops.access import parse_window

    window_s = parse_window(window)
    reader = open_reader_or_none(obj.config)
    try:
        found = collect_status(obj.config, reader, window_s)
    finally:
        if reader is not None:
            reader.close()
    if as_json:
        emit(found.to_json())
    else:
        click.echo(describe(found))
    if not found.ok:
        sys.exit(EXIT_CHECK_FAILED)


@cli.command()
@click.option("--port", type=int, help="Port on 127.0.0.1 (default: observability.dashboard.port).")
@click.pass_obj
@guard
def dashboard(obj: CliContext, port: int | None) -> None:
    """Serve the lag dashboard (per table: lag chart, throughput, consumer lag, checks)."""
    from ops.service import serve_dashboard

    serve_dashboard(obj.config, port, progress=note)


@cli.command()
@json_option()
@click.option("--window", default="15m", show_default=True, help="Percentile window: 90s, 15m, 1h.")
@click.pass_obj
@guard
def lag(obj: CliContext, as_json: bool, window: str) -> None:
    """Current replication lag per table, percentiles over a window, and Kafka consumer lag."""
    from cdchub.status import kafka_reachable
    from ops.access import lag_report, parse_window
    from ops.service import describe_lag

    servers = obj.config.kafka.bootstrap_servers
    # kafka-python waits half a minute for a broker that is down; a refused connection says it now.
    with_kafka = kafka_reachable(servers)
    report = lag_report(obj.config, parse_window(window), with_kafka=with_kafka)
    if not with_kafka:
        report["kafka_error"] = f"Kafka is not reachable at {servers}"
    if as_json:
        for table in report["tables"]:
            table.pop("series", None)
        emit(report)
    else:
        click.echo(describe_lag(report))


@cli.command()
@json_option()
@click.option("--ranges", type=click.IntRange(min=1), help="Also checksum N primary-key ranges.")
@click.pass_obj
@guard
def verify(obj: CliContext, as_json: bool, ranges: int | None) -> None:
    """Compare every replicated table with its source and check history (exit 1 on mismatch)."""
    from connectors.warehouses import open_session
    from core.config import DuckDBWarehouse
    from core.errors import MergeError
    from ops.access import open_reader
    from ops.checks import drift_json, store_checks
    from ops.range_checksum import all_ranges
    from ops.schema_drift import schema_drift
    from ops.verify import unreachable_sources, verify_all

    stored = True
    try:
        session = open_session(obj.config)  # writable: results are kept in _cdchub.checks
    except MergeError:
        if not isinstance(obj.config.warehouse, DuckDBWarehouse):
            raise
        # A running `cdchub run` holds the file: read through it; it stores its own checks.
        session = open_reader(obj.config)  # type: ignore[assignment]
        stored = False
    try:
        down = unreachable_sources(obj.config)
        report = verify_all(session, obj.config, down)
        # An unreachable source is reported once (by verify_all), not again per table and check.
        reachable = obj.config.model_copy(
            update={"sources": [s for s in obj.config.sources if s.name not in down]}
        )
        drift = schema_drift(session, reachable)
        report["ranges"] = all_ranges(session, reachable, ranges) if ranges else []
        if stored:
            store_checks(session, report, drift, report["ranges"])
        else:
            note("note: read through the running `cdchub run`; results not stored")
        report["schema_drift"] = drift_json(drift)
    finally:
        session.close()
    if as_json:
        emit(report)
    else:
        for entry in report["tables"]:
            mark = "OK  " if entry["ok"] else "FAIL"
            if entry["error"]:
                click.echo(f"{mark} {entry['source']}.{entry['table']}: {entry['error']}")
                continue
            click.echo(
                f"{mark} {entry['source']}.{entry['table']}: source {entry['source_rows']} rows, "
                f"warehouse {entry['warehouse_rows']}; missing {entry['missing_keys']}, "
                f"unexpected {entry['unexpected_keys']}, different {entry['different_rows']}; "
                f"history violations {sum(entry['history'].values())}"
            )
        for d in report["schema_drift"]:
            if not d["ok"]:
                click.echo(f"DRIFT {d['source']}.{d['table']}: {json.dumps(d, default=str)}")
        for r in report["ranges"]:
            for m in r["mismatched"]:
                click.echo(f"RANGE {r['source']}.{r['table']}: keys {m['from']}..{m['to']} differ")
        click.echo("verify: " + ("ok" if report["ok"] else "FAILED"))
    if not report["ok"]:
        sys.exit(EXIT_CHECK_FAILED)


@cli.command()
@json_option()
@click.pass_obj
@guard
def tables(obj: CliContext, as_json: bool) -> None:
    """List replicated tables and where they live in the warehouse."""
    from ops.access import open_reader
    from ops.catalog import replicated_tables

    session = open_reader(obj.config)
    try:
        found = replicated_tables(session)
    finally:
        session.close()
    if as_json:
        emit([t.to_json() for t in found])
        return
    for t in found:
        click.echo(
            f"{t.source}.{t.source_schema}.{t.source_table} -> "
            f"{t.warehouse_schema}.{t.current_table}, {t.warehouse_schema}.{t.history_table} "
            f"(key: {', '.join(t.key_columns)})"
        )
