"""The local stack and the demo: `stack up|down|load-sample|status`, `load-demo`, `workload`, `demo`."""

from __future__ import annotations

import dataclasses
import sys

import click

from cdchub.cli.app import cli
from cdchub.cli.output import EXIT_CHECK_FAILED, CliContext, emit, guard, json_option, note


@cli.group()
def stack() -> None:
    """Run the native local stack (PostgreSQL, MariaDB, Kafka KRaft, Kafka Connect + Debezium)."""


@stack.command("up")
@json_option("Then print the stack's status (as `stack status --json`) as one JSON document.")
@click.pass_obj
@guard
def stack_up(obj: CliContext, as_json: bool) -> None:
    """Start every component that is not running (idempotent)."""
    from infrastructure.stack.service import LocalStack

    local = LocalStack(obj.config)
    local.up(progress=note)
    if as_json:
        emit(local.status())


@stack.command("down")
@click.option("--purge", is_flag=True, help="Also delete data, logs, secrets and the warehouse.")
@json_option("Then print the stack's status (as `stack status --json`) as one JSON document.")
@click.pass_obj
@guard
def stack_down(obj: CliContext, purge: bool, as_json: bool) -> None:
    """Stop the processes `stack up` started."""
    from infrastructure.stack.service import LocalStack

    local = LocalStack(obj.config)
    local.down(purge=purge, progress=note)
    if as_json:
        emit(local.status() | {"purged": purge})


@stack.command("load-sample")
@click.argument("name", type=click.Choice(["pagila", "sakila-pg", "sakila-mysql", "northwind"]))
@click.option("--datasets", envvar="CDCHUB_DATASETS", help="Datasets dir (../shared/datasets).")
@json_option("Print {sample, sources} (the `sources:` entries) as one JSON document.")
@click.pass_obj
@guard
def stack_load_sample(obj: CliContext, name: str, datasets: str | None, as_json: bool) -> None:
    """Load a sample database into the local stack (idempotent); print its `sources:` entry."""
    import yaml

    from dbschemas.samples import load_sample_and_describe

    text = load_sample_and_describe(obj.config, name, datasets, progress=note)
    if as_json:
        emit({"sample": name, "sources": yaml.safe_load(text)})
    else:
        click.echo(text)


@stack.command("status")
@json_option("One JSON object.")
@click.pass_obj
@guard
def stack_status(obj: CliContext, as_json: bool) -> None:
    """Report each component (exit 1 when one is down)."""
    from infrastructure.stack.service import LocalStack

    status = LocalStack(obj.config).status()
    if as_json:
        emit(status)
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
        sys.exit(EXIT_CHECK_FAILED)


@cli.command("load-demo")
@json_option("Print {loaded, skipped} (source names) as one JSON document.")
@click.pass_obj
@guard
def load_demo(obj: CliContext, as_json: bool) -> None:
    """Create the demo schemas (shop on PostgreSQL, inventory on MariaDB) with seed rows."""
    from dbschemas.loader import demo_name, load_demo_schemas
    from infrastructure.stack.layout import StackLayout

    sources = list(obj.config.sources)
    load_demo_schemas(StackLayout(obj.config), sources, progress=note)
    if as_json:
        emit(
            {
                "loaded": [s.name for s in sources if demo_name(s) is not None],
                "skipped": [s.name for s in sources if demo_name(s) is None],
            }
        )


@cli.command()
@click.option("--rate", type=float, help="Target row changes per second.")
@click.option("--duration", type=float, help="Seconds to run.")
@click.option("--events", type=int, help="Row changes to make.")
@click.option("--seed", type=int, default=42, show_default=True)
@json_option("Print the result as one JSON document.")
@click.pass_obj
@guard
def workload(
    obj: CliContext,
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
    from cdchub.progress import run_progress

    with run_progress() as progress:  # the workload's counter: one live line on a terminal
        result = run_workload(
            StackLayout(obj.config),
            list(obj.config.sources),
            rate=rate,
            duration=duration,
            events=events,
            seed=seed,
            progress=progress,
        )
    if as_json:
        emit(
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
@json_option("Print the summary as one JSON document.")
@click.option("--events", type=int, default=3000, show_default=True, help="Workload row changes.")
@click.option("--rate", type=float, default=400.0, show_default=True, help="Changes per second.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.pass_obj
@guard
def demo(obj: CliContext, as_json: bool, events: int, rate: float, seed: int) -> None:
    """Stack up, schemas, connectors, workload, replicate, verify, summarise."""
    from cdchub.demo import run_demo
    from cdchub.progress import run_progress

    # The drain's counter is one live line on a terminal; plain lines (on change) otherwise.
    with run_progress() as progress:
        summary = run_demo(obj.config, events=events, rate=rate, seed=seed, progress=progress)
    if as_json:
        emit(summary)
    else:
        from cdchub.demo import describe

        click.echo(describe(summary))
    if not summary["ok"]:
        sys.exit(EXIT_CHECK_FAILED)
