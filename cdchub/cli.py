"""The `cdchub` command line: one service function per command, one clear line per error."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cdchub import __version__
from cdchub.tabular import FORMATS
from connectors.warehouses import kinds as warehouse_kinds
from core.config import HubConfig, load_config
from core.errors import CdcHubError, ConfigError


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


def _one_line(exc: BaseException) -> str:
    """An error as one line: typed errors say it all; others get their type and first line."""
    if isinstance(exc, CdcHubError):
        return " ".join(str(exc).split())
    first = (str(exc).strip().splitlines() or [""])[0].strip()
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _guard(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print every error as one line (traceback with --debug) and exit 2 (README: errors)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context().find_object(_Context)
        debug = ctx is not None and ctx.debug
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise  # usage errors: click prints them and exits 2
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            if debug:
                traceback.print_exc()
            hint = "" if debug or isinstance(exc, CdcHubError) else " (--debug shows the traceback)"
            click.echo(f"error: {_one_line(exc)}{hint}", err=True)
            sys.exit(2)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="CDCHUB_CONFIG", help="Config file (cdchub.yaml).")
@click.option("--debug", is_flag=True, help="Print tracebacks and debug logs.")
@click.version_option(__version__, "--version", prog_name="cdchub")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """cdchub: Debezium CDC from PostgreSQL and MariaDB/MySQL into SCD2 warehouse tables."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)
    if not debug:
        # kafka-python logs every refused connection; cdchub reports an unreachable Kafka itself,
        # in one line, so its own warnings would only bury that line.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    ctx.obj = _Context(config_path, debug)


@cli.command()
@click.option(
    "--source",
    "specs",
    multiple=True,
    help="NAME=KIND://USER@HOST[:PORT]/DATABASE (KIND: postgres, mariadb, mysql); repeatable.",
)
@click.option("--tables", help="With one source: the tables to capture, comma-separated.")
@click.option("--kafka", default="127.0.0.1:29092", show_default=True, help="Bootstrap servers.")
@click.option(
    "--connect", default="http://127.0.0.1:28083", show_default=True, help="Kafka Connect URL."
)
@click.option("--output", "output", default="cdchub.yaml", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.option("--json", "as_json", is_flag=True, help="Print {config, admin_sql} as JSON.")
@_guard
def init(
    specs: tuple[str, ...],
    tables: str | None,
    kafka: str,
    connect: str,
    output: str,
    force: bool,
    as_json: bool,
) -> None:
    """Write a cdchub.yaml for the given sources and print the admin SQL they need."""
    from pathlib import Path

    from cdchub.scaffold import scaffold, write_config

    table_list = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
    text, sql = scaffold(list(specs), table_list, kafka, connect)
    path = Path(output)
    write_config(path, text, force)
    _progress(f"wrote {path}; run the SQL below as an admin, then `cdchub connectors apply`")
    if as_json:
        _emit({"config": str(path), "admin_sql": [line for line in sql if line]})
    else:
        click.echo("\n".join(sql).rstrip())


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


_SOURCE_OPTION = click.option(
    "--source", "source", help="Only this source (default: every configured source)."
)


@connectors.command("apply")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the configs it would send (secrets masked); send nothing.",
)
@_SOURCE_OPTION
@click.option(
    "--json", "as_json", is_flag=True, help="Print the resulting state as one JSON document."
)
@click.pass_obj
@_guard
def connectors_apply(obj: _Context, dry_run: bool, source: str | None, as_json: bool) -> None:
    """Create or update one connector per configured source and wait until it runs."""
    from connectors.service import apply_connectors
    from ops.lifecycle import planned_configs

    if dry_run:
        planned = planned_configs(obj.config, source)
        click.echo(json.dumps(planned, indent=None if as_json else 2))
        return
    config = obj.config
    if source is not None:
        config = config.model_copy(update={"sources": [config.source(source)]})
    report = apply_connectors(config, progress=_progress)
    if as_json:
        _emit(report)


def _control(obj: _Context, action: str, source: str | None, as_json: bool) -> None:
    from ops.lifecycle import control

    results = control(obj.config, action, source, progress=_progress)
    if as_json:
        _emit(results)


@connectors.command("pause")
@_SOURCE_OPTION
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def connectors_pause(obj: _Context, source: str | None, as_json: bool) -> None:
    """Pause connectors: capture stops, the offsets (and the PostgreSQL slot) are kept."""
    _control(obj, "pause", source, as_json)


@connectors.command("resume")
@_SOURCE_OPTION
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def connectors_resume(obj: _Context, source: str | None, as_json: bool) -> None:
    """Resume paused connectors from where they stopped."""
    _control(obj, "resume", source, as_json)


@connectors.command("restart")
@_SOURCE_OPTION
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def connectors_restart(obj: _Context, source: str | None, as_json: bool) -> None:
    """Restart connectors and all their tasks (e.g. after a FAILED task was fixed)."""
    _control(obj, "restart", source, as_json)


@connectors.command("delete")
@_SOURCE_OPTION
@click.option(
    "--drop-slot",
    is_flag=True,
    help="Also drop the PostgreSQL replication slot (else it keeps holding WAL).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def connectors_delete(obj: _Context, source: str | None, drop_slot: bool, as_json: bool) -> None:
    """Delete connectors; say what is left (topics, warehouse tables, source objects)."""
    from ops.lifecycle import delete, describe_delete

    reports = delete(obj.config, source, drop_slot=drop_slot, progress=_progress)
    if as_json:
        _emit(reports)
    else:
        for report in reports:
            click.echo(describe_delete(report))


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
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@click.pass_obj
@_guard
def workload(
    obj: _Context,
    rate: float | None,
    duration: float | None,
    events: int | None,
    seed: int,
    as_json: bool,
) -> None:
    """Run inserts, updates and deletes in transactions against every demo source."""
    from dbschemas.workload import run_workload
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
    if as_json:
        _emit(
            {
                "changes": result.changes,
                "transactions": result.transactions,
                "elapsed_s": round(result.elapsed, 3),
                "interrupted": result.interrupted,
                "sources": {n: dataclasses.asdict(st) for n, st in result.sources.items()},
            }
        )
    else:
        click.echo(str(result))


@cli.command()
@click.option("--until-idle", type=float, help="Exit 0 once caught up and idle this many seconds.")
@click.option("--max-seconds", type=float, help="Stop after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON document.")
@click.pass_obj
@_guard
def run(obj: _Context, until_idle: float | None, max_seconds: float | None, as_json: bool) -> None:
    """Consume every CDC topic and merge into the warehouse (Ctrl-C stops after the batch)."""
    from cdc_consumers.replay import ReplayJobs, replay_in_run
    from cdc_consumers.runner import Runner
    from cdchub.dlq_service import decide_in_run
    from connectors.warehouses import open_session
    from merge.runstate import stopped_tables
    from ops.checks import ScheduledChecks
    from ops.service import instrumented

    session = open_session(obj.config)
    jobs = ReplayJobs()  # `cdchub replay --execute` hands its work to this run
    try:
        with instrumented(
            obj.config,
            session,
            progress=_progress,
            replay=lambda doc: replay_in_run(obj.config, jobs, doc),
            dlq=lambda doc: jobs.submit(
                lambda s: decide_in_run(s, obj.config.kafka.group_id, doc), timeout_s=120
            ),
        ) as instrumentation:
            runner = Runner(
                obj.config,
                session,
                progress=_progress,
                instrumentation=instrumentation,
                jobs=jobs,
                between_batches=ScheduledChecks(obj.config),
            )
            result = runner.run(until_idle=until_idle, max_seconds=max_seconds)
        stops = stopped_tables(session, obj.config.kafka.group_id)
    finally:
        session.close()
    if as_json:
        _emit(
            {
                "events": result.events,
                "versions": result.versions,
                "batches": result.batches,
                "per_table": result.per_table,
                "elapsed_s": round(result.elapsed_s, 3),
                "stopped_by": result.stopped_by,
                "forced_releases": result.forced_releases,
                "waiting": result.waiting,
                "stopped_tables": [stop.describe() for stop in stops],
            }
        )
    else:
        forced = (
            f"; {result.forced_releases} transactions applied without consistency (stalled)"
            if result.forced_releases
            else ""
        )
        click.echo(
            f"applied {result.events} events ({result.versions} new versions) in "
            f"{result.batches} batches, {result.elapsed_s:.1f}s; stopped by {result.stopped_by}"
            f"{forced}"
        )
    if result.stopped_by == "max-seconds" and until_idle is not None and result.waiting:
        click.echo("not idle yet; still waiting for:", err=True)
        for line in result.waiting:
            click.echo(f"  {line}", err=True)
    # A stopped table needs a human: say so in the summary and in the exit status (1).
    for stop in stops if not as_json else []:
        click.echo(stop.describe())
    if stops:
        click.echo(f"run: {len(stops)} table(s) stopped; their changes are held", err=True)
        sys.exit(1)


@cli.command()
@click.option("--table", "table", required=True, help="shop.orders or shop.public.orders")
@click.option("--from-offset", type=click.IntRange(min=0), help="First offset to re-read.")
@click.option("--to-offset", type=click.IntRange(min=0), help="Last offset to re-read (inclusive).")
@click.option("--from-time", help="Re-read records Kafka received at or after this instant.")
@click.option("--to-time", help="Stop before records Kafka received at or after this instant.")
@click.option("--execute", is_flag=True, help="Apply; without it only the plan is printed.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def replay(
    obj: _Context,
    table: str,
    from_offset: int | None,
    to_offset: int | None,
    from_time: str | None,
    to_time: str | None,
    execute: bool,
    as_json: bool,
) -> None:
    """Re-read a range of a table's topic and re-apply it (history changes only if events were missing)."""
    from cdchub.replay_service import replay_table

    if from_offset is not None and from_time is not None:
        raise click.UsageError("give --from-offset or --from-time, not both")
    if to_offset is not None and to_time is not None:
        raise click.UsageError("give --to-offset or --to-time, not both")
    report = replay_table(
        obj.config,
        table,
        from_offset=from_offset,
        to_offset=to_offset,
        from_time=_instant(from_time, "--from-time") if from_time else None,
        to_time=_instant(to_time, "--to-time") if to_time else None,
        execute=execute,
        progress=_progress,
    )
    if as_json:
        _emit(report)
        return
    click.echo(report["plan_text"])
    if report.get("summary") is None:
        click.echo("nothing applied: add --execute to apply this plan")
    else:
        click.echo(report["summary_text"])


@cli.command()
@click.option("--table", "table", required=True, help="shop.orders or shop.public.orders")
@click.option("--execute", is_flag=True, help="Rebuild; without it only the plan is printed.")
@click.option(
    "--accept-history-loss",
    is_flag=True,
    help="Rebuild even though Kafka no longer holds the topic's first records.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def rebuild(
    obj: _Context, table: str, execute: bool, accept_history_loss: bool, as_json: bool
) -> None:
    """Rebuild one table's current and history tables from its whole topic, swapped in atomically."""
    from cdchub.replay_service import rebuild_table

    report = rebuild_table(
        obj.config,
        table,
        execute=execute,
        accept_history_loss=accept_history_loss,
        progress=_progress,
    )
    if as_json:
        _emit(report)
        return
    if report.get("warning"):
        click.echo(f"warning: {report['warning']}", err=True)
    click.echo(report["plan_text"])
    if report.get("summary") is None:
        click.echo("nothing changed: add --execute to rebuild")
    else:
        click.echo(report["summary_text"])


@cli.group()
def dlq() -> None:
    """Dead letters: events the hub could not apply (list, show, retry, skip)."""


@dlq.command("list")
@click.option("--all", "include_done", is_flag=True, help="Also skipped and applied letters.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def dlq_list(obj: _Context, include_done: bool, as_json: bool) -> None:
    """List dead letters (open and retrying ones; --all for every one)."""
    from cdchub.dlq_service import list_letters

    found = list_letters(obj.config, include_done=include_done)
    if as_json:
        _emit([letter.summary() for letter in found])
        return
    if not found:
        click.echo("no dead letters" + ("" if include_done else " waiting (--all shows every one)"))
        return
    for letter in found:
        click.echo(
            f"{letter.letter_id}  {letter.status:8} {letter.source}.{letter.table_name}  "
            f"{letter.topic}[{letter.partition}]@{letter.record_offset}  {letter.error_kind}: "
            f"{' '.join(letter.error.split())[:160]}"
        )


@dlq.command("show")
@click.argument("letter_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def dlq_show(obj: _Context, letter_id: str, as_json: bool) -> None:
    """Show one dead letter whole: its error, coordinates and the record's value."""
    from cdchub.dlq_service import list_letters

    found = list_letters(obj.config, letter_id=letter_id)
    if not found:
        raise ConfigError(f"no dead letter {letter_id} (see `cdchub dlq list --all`)")
    letter = found[0]
    doc = letter.summary() | {
        "record_key": letter.record_key.decode("utf-8", "replace") if letter.record_key else None,
        "record_value": (
            letter.record_value.decode("utf-8", "replace") if letter.record_value else None
        ),
    }
    if as_json:
        _emit(doc)
        return
    for name, value in doc.items():
        click.echo(f"{name}: {value}")


@dlq.command("retry")
@click.argument("letter_ids", nargs=-1)
@click.option("--table", help="Retry every open or skipped letter of this table.")
@click.pass_obj
@_guard
def dlq_retry(obj: _Context, letter_ids: tuple[str, ...], table: str | None) -> None:
    """Apply dead letters again (after fixing the cause); `cdchub run` picks them up."""
    from cdchub.dlq_service import change

    if not letter_ids and table is None:
        raise click.UsageError("give letter ids or --table")
    changed = change(obj.config, "retry", list(letter_ids), table)
    click.echo(f"{len(changed)} dead letter(s) marked for retry: {', '.join(changed)}")


@dlq.command("skip")
@click.argument("letter_ids", nargs=-1, required=True)
@click.pass_obj
@_guard
def dlq_skip(obj: _Context, letter_ids: tuple[str, ...]) -> None:
    """Give up on dead letters; a table they halted resumes."""
    from cdchub.dlq_service import change

    changed = change(obj.config, "skip", list(letter_ids))
    click.echo(f"{len(changed)} dead letter(s) skipped: {', '.join(changed)}")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def tables(obj: _Context, as_json: bool) -> None:
    """List replicated tables and where they live in the warehouse."""
    from ops.access import open_reader
    from ops.catalog import replicated_tables

    session = open_reader(obj.config)
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
    from connectors.warehouses import open_session
    from ops.schema_admin import accept_schema

    session = open_session(obj.config)
    try:
        found = accept_schema(session, table, obj.config.kafka.group_id)
    finally:
        session.close()
    click.echo(
        f"accepted {found.warehouse_schema}.{found.current_table}: restart `cdchub run` to apply "
        "its held changes"
    )


_FORMAT_HELP = (
    "table (default on a terminal), csv (default when piped), tsv, json (one document), "
    "parquet (needs --output)."
)


def _instant(text: str, option: str) -> dt.datetime:
    from ops.history import parse_instant

    return parse_instant(text, option)


@cli.command()
@click.argument("table")
@click.option(
    "--at",
    "at",
    required=True,
    help="The instant: ISO 8601 (2026-11-25T18:00:00Z; no zone means UTC) or `now`.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help=_FORMAT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json: one JSON document.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
@click.option(
    "--limit", type=click.IntRange(min=0), default=None, help="Print at most N rows (N >= 0)."
)
@click.pass_obj
@_guard
def asof(
    obj: _Context,
    table: str,
    at: str,
    fmt: str | None,
    as_json: bool,
    output: Path | None,
    limit: int | None,
) -> None:
    """Print the rows TABLE held at an instant, from its history (e.g. `asof shop.orders --at …`)."""
    from cdchub.query import warn_before_history
    from cdchub.tabular import default_format, write_result
    from ops.access import open_reader
    from ops.history import find_table, rows_as_of

    instant = _instant(at, "--at")
    if as_json and fmt not in (None, "json"):
        raise click.UsageError("--json and --format disagree; give one")
    fmt = "json" if as_json else fmt or default_format()
    session = open_reader(obj.config)
    try:
        found = find_table(session, table)  # type: ignore[arg-type]
        columns, rows = rows_as_of(session, found, instant)  # type: ignore[arg-type]
        warn_before_history(session, [found.names], instant, _progress)  # type: ignore[arg-type]
    finally:
        session.close()
    rows = rows[:limit] if limit is not None else rows
    write_result(fmt, columns, rows, output)
    _progress(f"{len(rows)} rows of {table} as of {instant.isoformat()}")


@cli.command()
@click.argument("query", required=False)
@click.option(
    "--file",
    "query_file",
    type=click.File("r", encoding="utf-8"),
    help="Read the query from FILE (`-` for stdin), e.g. one that starts with a `--` comment.",
)
@click.option(
    "--as-of",
    "as_of",
    help="Read every replicated table as it was at this instant (ISO 8601 or `now`).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), help=_FORMAT_HELP)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
@click.option("--show-sql", is_flag=True, help="Print the SQL sent to the warehouse on stderr.")
@click.pass_obj
@_guard
def sql(
    obj: _Context,
    query: str | None,
    query_file: Any,
    as_of: str | None,
    fmt: str | None,
    output: Path | None,
    show_sql: bool,
) -> None:
    """Run one read-only SELECT on the warehouse, optionally as of an instant (`--as-of`).

    Works while `cdchub run` holds the DuckDB file: the run answers the query. A query that starts
    with `-` (a `--` comment) goes after `--` or in --file.
    """
    from cdchub.query import run_sql
    from cdchub.tabular import default_format, write_result
    from ops.access import open_reader

    if (query is None) == (query_file is None):
        raise click.UsageError("give the query as an argument or with --file (one of them)")
    query = query if query is not None else query_file.read()
    assert query is not None

    instant = _instant(as_of, "--as-of") if as_of else None
    fmt = fmt or default_format()
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs --output FILE")
    session = open_reader(obj.config)
    try:
        result = run_sql(session, query, instant, warn=_progress)  # type: ignore[arg-type]
    finally:
        session.close()
    if show_sql:
        _progress(result.sql)
    write_result(fmt, result.columns, result.rows, output)
    _progress(f"{len(result.rows)} rows" + (f" as of {instant.isoformat()}" if instant else ""))


@cli.command()
@click.option("--drop", is_flag=True, help="Remove the views instead.")
@click.pass_obj
@_guard
def views(obj: _Context, drop: bool) -> None:
    """Create the `<table>_versions` and `<table>_changes` views of every replicated table."""
    from cdchub.analytics import create_views
    from connectors.warehouses import open_session

    session = open_session(obj.config)  # writes DDL: on DuckDB, stop `cdchub run` first
    try:
        names = create_views(session, drop=drop)
    finally:
        session.close()
    for name in names:
        click.echo(name)
    _progress(f"{'dropped' if drop else 'created'} {len(names)} views")


@cli.command("dbt-sources")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
@click.pass_obj
@_guard
def dbt_sources(obj: _Context, output: Path | None) -> None:
    """Write a dbt sources.yml for the replicated tables (freshness from the lag SLO)."""
    from cdchub.analytics import dbt_sources_yaml
    from ops.access import open_reader

    session = open_reader(obj.config)
    try:
        text = dbt_sources_yaml(obj.config, session)
    finally:
        session.close()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        _progress(f"wrote {output}")
    if obj.config.observability.freshness_slo_s is None and not (
        obj.config.observability.freshness_slo_per_table_s
    ):
        _progress(
            "note: no observability.freshness_slo_s in the config, so no freshness thresholds"
        )


@cli.command()
@click.option("--table", "table", required=True, help="shop.orders or shop.public.orders.")
@click.option("--where", "condition", help='Only rows matching this condition: "order_id > 100".')
@click.option("--timeout", type=float, default=900.0, show_default=True, help="Seconds to wait.")
@click.option("--no-wait", is_flag=True, help="Do not wait for `cdchub run` to apply the rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@click.pass_obj
@_guard
def backfill(
    obj: _Context,
    table: str,
    condition: str | None,
    timeout: float,
    no_wait: bool,
    as_json: bool,
) -> None:
    """Re-read a table through a Debezium incremental snapshot; only drift writes history."""
    from cdchub.backfill import count_reread_versions, run_backfill
    from cdchub.progress import progress_bar

    def count(target: Any, since: str) -> tuple[int, int] | None:
        reader = _open_reader(obj.config)
        if reader is None:
            return None
        try:
            found = count_reread_versions(reader, target, since)
        finally:
            reader.close()
        return None if found is None else (found, 0)

    with progress_bar(f"backfill {table}") as bar:
        result = run_backfill(
            obj.config,
            table,
            condition,
            timeout_s=timeout,
            wait_applied_s=0 if no_wait else 300.0,
            progress=_progress,
            bar=bar,
            count_versions=count,
        )
    if as_json:
        _emit(result.to_json())
        return
    click.echo(
        f"backfill {result.table}: {result.rows_read} rows read"
        + (
            f" (Debezium scanned {result.debezium_rows_scanned})"
            if result.debezium_rows_scanned is not None
            else ""
        )
        + f" in {result.elapsed_s}s"
    )
    if result.repaired_drift is not None:
        click.echo(
            f"  repaired drift: {result.repaired_drift} rows differed from the warehouse and "
            f"were written as new versions; {result.unchanged} were unchanged (no version)"
        )
    elif result.applied is False:
        click.echo("  not applied yet: the rows wait in Kafka for `cdchub run`")
    elif result.applied is None:
        click.echo("  not waited for: `cdchub run` applies the rows")
    else:
        click.echo("  applied; repaired drift not counted (the warehouse could not be read)")


def _open_reader(config: HubConfig) -> Any:
    """A read-only warehouse reader (directly, or through the run that holds DuckDB), or None."""
    from ops.access import open_reader

    try:
        return open_reader(config)
    except CdcHubError as exc:
        _progress(f"warning: cannot read the warehouse: {exc}")
        return None


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--ranges", type=click.IntRange(min=1), help="Also checksum N primary-key ranges.")
@click.pass_obj
@_guard
def verify(obj: _Context, as_json: bool, ranges: int | None) -> None:
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
            _progress("note: read through the running `cdchub run`; results not stored")
        report["schema_drift"] = drift_json(drift)
    finally:
        session.close()
    if as_json:
        _emit(report)
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
        sys.exit(1)


@cli.command("render-sql")
@click.option(
    "--warehouse",
    "kind",
    type=click.Choice(warehouse_kinds()),
    default=warehouse_kinds()[0],
    show_default=True,
)
@click.option("--table", "table", required=True, help="source.namespace.table or schema.table.")
@click.option("--columns", help='Instead of the demo schemas: "id:int64, price:decimal(12,2)".')
@click.option("--key", help="Key columns of --columns, comma-separated.")
@_guard
def render_sql(kind: str, table: str, columns: str | None, key: str | None) -> None:
    """Print the statements of one batch for one table, rendered for a warehouse (no database)."""
    from cdchub.render_sql import render_plan
    from dbschemas.demo_tables import find_demo_table, parse_columns

    shape = parse_columns(table, columns, key or "") if columns else find_demo_table(table)
    click.echo(render_plan(kind, shape))


@cli.group()
def bench() -> None:
    """Benchmarks that print figures (they assert nothing)."""


@bench.command("merge")
@click.option(
    "--warehouse",
    "kind",
    type=click.Choice(warehouse_kinds()),
    default=warehouse_kinds()[0],
    show_default=True,
)
@click.option("--events", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--batch", type=click.IntRange(1), default=1_000, show_default=True)
@click.option("--keys", type=click.IntRange(1), default=2_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--yes", is_flag=True, help="Allow a configured warehouse other than the local stack's."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@_guard
def bench_merge(
    obj: _Context,
    kind: str,
    events: int,
    batch: int,
    keys: int,
    seed: int,
    yes: bool,
    as_json: bool,
) -> None:
    """Merge throughput on synthetic inserts/updates/deletes: events/s, batch p50/p95, peak RSS.

    It works in a scratch schema of its own and removes every trace of it afterwards.
    """
    from cdchub.bench import bench_merge as run_bench

    result = run_bench(obj.config, kind, events=events, batch=batch, keys=keys, seed=seed, yes=yes)
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
    from ops.access import lag_report, parse_window
    from ops.service import describe_lag

    report = lag_report(obj.config, parse_window(window))
    if as_json:
        for table in report["tables"]:
            table.pop("series", None)
        _emit(report)
    else:
        click.echo(describe_lag(report))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--window", default="15m", show_default=True, help="Lag percentile window.")
@click.pass_obj
@_guard
def status(obj: _Context, as_json: bool, window: str) -> None:
    """One screen: stack, connectors, the run, and per table state, lag, versions, verify (exit 1
    when something needs a person)."""
    from cdchub.status import collect_status, describe
    from ops.access import parse_window

    window_s = parse_window(window)
    reader = _open_reader(obj.config)
    try:
        found = collect_status(obj.config, reader, window_s)
    finally:
        if reader is not None:
            reader.close()
    if as_json:
        _emit(found.to_json())
    else:
        click.echo(describe(found))
    if not found.ok:
        sys.exit(1)


@cli.command()
@click.option("--port", type=int, help="Port on 127.0.0.1 (default: observability.dashboard.port).")
@click.pass_obj
@_guard
def dashboard(obj: _Context, port: int | None) -> None:
    """Serve the lag dashboard (per table: lag chart, throughput, consumer lag, checks)."""
    from ops.service import serve_dashboard

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


_GLOBAL_FLAGS = {"--debug"}
_GLOBAL_VALUED = {"--config"}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move `--config PATH` / `--config=PATH` / `--debug` given after the subcommand to the front,
    so `cdchub verify --config x.yaml` works like `cdchub --config x.yaml verify`.

    Only these two names are moved (no subcommand has an option of that name); `--` ends the scan.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in _GLOBAL_FLAGS or any(arg.startswith(f"{n}=") for n in _GLOBAL_VALUED):
            front.append(arg)
        elif arg in _GLOBAL_VALUED and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main() -> None:
    """Console-script entry point."""
    cli(args=hoist_global_options(sys.argv[1:]), prog_name="cdchub")


if __name__ == "__main__":
    main()
