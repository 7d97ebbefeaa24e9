"""`cdchub connectors apply|pause|resume|restart|delete|status`: the Debezium connectors."""

from __future__ import annotations

import json
import sys

import click

from cdchub.cli.app import cli
from cdchub.cli.output import EXIT_CHECK_FAILED, CliContext, emit, guard, json_option, note


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
@json_option("Print the resulting state (or, with --dry-run, the configs) as one JSON document.")
@click.pass_obj
@guard
def connectors_apply(obj: CliContext, dry_run: bool, source: str | None, as_json: bool) -> None:
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
    report = apply_connectors(config, progress=note)
    if as_json:
        emit(report)


def _control(obj: CliContext, action: str, source: str | None, as_json: bool) -> None:
    from ops.lifecycle import control

    results = control(obj.config, action, source, progress=note)
    if as_json:
        emit(results)


@connectors.command("pause")
@_SOURCE_OPTION
@json_option()
@click.pass_obj
@guard
def connectors_pause(obj: CliContext, source: str | None, as_json: bool) -> None:
    """Pause connectors: capture stops, the offsets (and the PostgreSQL slot) are kept."""
    _control(obj, "pause", source, as_json)


@connectors.command("resume")
@_SOURCE_OPTION
@json_option()
@click.pass_obj
@guard
def connectors_resume(obj: CliContext, source: str | None, as_json: bool) -> None:
    """Resume paused connectors from where they stopped."""
    _control(obj, "resume", source, as_json)


@connectors.command("restart")
@_SOURCE_OPTION
@json_option()
@click.pass_obj
@guard
def connectors_restart(obj: CliContext, source: str | None, as_json: bool) -> None:
    """Restart connectors and all their tasks (e.g. after a FAILED task was fixed)."""
    _control(obj, "restart", source, as_json)


@connectors.command("delete")
@_SOURCE_OPTION
@click.option(
    "--drop-slot",
    is_flag=True,
    help="Also drop the PostgreSQL replication slot (else it keeps holding WAL).",
)
@json_option()
@click.pass_obj
@guard
def connectors_delete(obj: CliContext, source: str | None, drop_slot: bool, as_json: bool) -> None:
    """Delete connectors; say what is left (topics, warehouse tables, source objects)."""
    from ops.lifecycle import delete, describe_delete

    reports = delete(obj.config, source, drop_slot=drop_slot, progress=note)
    if as_json:
        emit(reports)
    else:
        for report in reports:
            click.echo(describe_delete(report))


@connectors.command("status")
@json_option()
@click.pass_obj
@guard
def connectors_status(obj: CliContext, as_json: bool) -> None:
    """Connector and task state per source (exit 1 unless all run)."""
    from connectors.service import connector_status

    report = connector_status(obj.config)
    if as_json:
        emit(report)
    else:
        for entry in report:
            tasks = ",".join(entry["tasks"]) or "-"
            line = f"{entry['connector']:24} {entry['state']:10} tasks: {tasks}"
            click.echo(line + (f"  error: {entry['error']}" if entry.get("error") else ""))
    if not all(e["state"] == "RUNNING" and all(t == "RUNNING" for t in e["tasks"]) for e in report):
        sys.exit(EXIT_CHECK_FAILED)
