"""`cdchub bench merge|catchup`: benchmarks that print figures."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cdchub.cli.app import cli
from cdchub.cli.output import (
    EXIT_CHECK_FAILED,
    CliContext,
    emit,
    guard,
    json_option,
    warehouse_kind_option,
)


@cli.group()
def bench() -> None:
    """Benchmarks that print figures (they assert nothing)."""


@bench.command("merge")
@warehouse_kind_option()
@click.option("--events", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--batch", type=click.IntRange(1), default=1_000, show_default=True)
@click.option("--keys", type=click.IntRange(1), default=2_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--yes", is_flag=True, help="Allow a configured warehouse other than the local stack's."
)
@json_option()
@click.pass_obj
@guard
def bench_merge(
    obj: CliContext,
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
    if as_json:
        emit(result.to_json())
    else:
        click.echo(result.describe())


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
@json_option("One JSON array: one object per timed run.")
@guard
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
    from cdchub.progress import run_progress

    # Plain lines even on a terminal (no display thread beside the timed run); a waiting line that
    # did not change since the last one is not printed again.
    with run_progress(force_plain=True) as progress:
        results = run_bench(
            events=events,
            warehouse=kind,
            transaction_consistent=transaction_consistent,
            compare_consistency=compare_consistency,
            peer=peer,
            profile=profile.resolve() if profile else None,
            progress=progress,
        )
    if as_json:
        emit([result.to_json() for result in results])  # one array, one object per timed run
    else:
        for result in results:
            click.echo(result.describe())
    if any(not r.verify_ok or (r.peer is not None and not r.peer.equal) for r in results):
        sys.exit(EXIT_CHECK_FAILED)
