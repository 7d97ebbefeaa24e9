"""The local stack and the demo: `stack up|down|load-sample|status`, `load-demo`, `workload`, `demo`."""

from __future__ import annotations

import dataclasses
import sys

import click

from cdchub.cli.app import cli
from cdchub.cli.output import CliContext, emit, guard, note


@cli.group()
def stack() -> None:
    """Run the native local stack (PostgreSQL, MariaDB, Kafka KRaft, Kafka Connect + Debezium)."""


@stack.command("up")
@click.pass_obj
@guard
def stack_up(obj: CliContext) -> None:
    """Start every component that is not running (idempotent)."""
    from infrastructure.stack.service import LocalStack

    LocalStack(obj.config).up(progress=note)


@stack.command("down")
@click.option("--purge", is_flag=True, help="Also delete data, logs, secrets and the warehouse.")
@click.pass_obj
@guard
def stack_down(obj: CliContext, purge: bool) -> None:
    """Stop the processes `stack up` started."""
    from infrastructure.stack.service import LocalStack

    LocalStack(obj.config).down(purge=purge, progress=note)


@stack.command("load-sample")
@click.argument("name", type=click.Choice(["pagila", "sakila-pg", "sakila-mysql", "northwind"]))
@click.option("--datasets", envvar="CDCHUB_DATASETS", help="Datasets dir (../shared/datasets).")
@click.pass_obj
@guard
def stack_load_sample(obj: CliContext, name: str, datasets: str | None) -> None:
    """Load a sample database into the local stack (idempotent); print its `sources:` entry."""
    from dbschemas.samples import load_sample_and_describe

    click.echo(load_sample_and_describe(obj.config, name, datasets, progress=note))


@stack.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
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
        sys.exit(1)


@cli.command("load-demo")
@click.pass_obj
@guard
def load_demo(obj: CliContext) -> None:
    """Create the demo schemas (shop on PostgreSQL, inventory on MariaDB) with seed rows."""
    from dbschemas.loader import load_demo_schemas
    from infrastructure.stack.layout import StackLayout

    load_demo_schemas(StackLayout(obj.config), list(obj.config.sources), progress=note)


@cli.command()
@click.option("--rate", type=float, help="Target row changes per second.")
@click.option("--duration", type=float, help="Seconds to run.")
@click.option("--events", type=int, help="Row changes to make.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
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
    result = run_workload(
        StackLayout(obj.config),
        list(obj.config.sources),
        rate=rate,
        duration=duration,
        events=events,
        seed=seed,
        progress=note,
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
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (last line).")
@click.option("--events", type=int, default=3000, show_default=True, help="Workload row changes.")
@click.option("--rate", type=float, default=400.0, show_default=True, help="Changes per second.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.pass_obj
@guard
def demo(obj: CliContext, as_json: bool, events: int, rate: float, seed: int) -> None:
    """Stack up, schemas, connectors, workload, replicate, verify, summarise."""
    from cdchub.demo import run_demo

    summary = run_demo(obj.config, events=events, rate=rate, seed=seed, progress=note)
    if as_json:
        emit(summary)
    else:
        from cdchub.demo import describe

        click.echo(describe(summary))
    if not summary["ok"]:
        sys.exit(1)
