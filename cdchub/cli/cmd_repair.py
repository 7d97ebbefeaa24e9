"""Repairs: `replay`, `rebuild`, `backfill`, `dlq list|show|retry|skip`, `schema accept`."""

from __future__ import annotations

from typing import Any

import click

from cdchub.cli.app import cli
from cdchub.cli.output import (
    CliContext,
    emit,
    guard,
    json_option,
    note,
    open_reader_or_none,
    parse_instant_option,
)
from core.errors import ConfigError


def _print_plan_report(report: dict[str, Any], as_json: bool, not_executed: str) -> None:
    """A replay's or rebuild's report: one JSON document, or as text its warning, the plan, then
    the summary (without --execute, `not_executed`)."""
    if as_json:
        emit(report)
        return
    if report.get("warning"):
        click.echo(f"warning: {report['warning']}", err=True)
    click.echo(report["plan_text"])
    click.echo(not_executed if report.get("summary") is None else report["summary_text"])


@cli.command()
@click.option("--table", "table", required=True, help="shop.orders or shop.public.orders")
@click.option("--from-offset", type=click.IntRange(min=0), help="First offset to re-read.")
@click.option("--to-offset", type=click.IntRange(min=0), help="Last offset to re-read (inclusive).")
@click.option("--from-time", help="Re-read records Kafka received at or after this instant.")
@click.option("--to-time", help="Stop before records Kafka received at or after this instant.")
@click.option("--execute", is_flag=True, help="Apply; without it only the plan is printed.")
@json_option()
@click.pass_obj
@guard
def replay(
    obj: CliContext,
    table: str,
    from_offset: int | None,
    to_offset: int | None,
    from_time: str | None,
    to_time: str | None,
    execute: bool,
    as_json: bool,
) -> None:
    """Re-read a range of a table's topic and re-apply it (history changes only if events were missing)."""
    from cdchub.progress import optional_bar
    from cdchub.replay_service import replay_table

    if from_offset is not None and from_time is not None:
        raise click.UsageError("give --from-offset or --from-time, not both")
    if to_offset is not None and to_time is not None:
        raise click.UsageError("give --to-offset or --to-time, not both")
    with optional_bar(f"replay {table}", execute) as bar:
        report = replay_table(
            obj.config,
            table,
            from_offset=from_offset,
            to_offset=to_offset,
            from_time=parse_instant_option(from_time, "--from-time") if from_time else None,
            to_time=parse_instant_option(to_time, "--to-time") if to_time else None,
            execute=execute,
            progress=note,
            bar=bar,
        )
    _print_plan_report(report, as_json, "nothing applied: add --execute to apply this plan")


@cli.command()
@click.option("--table", "table", required=True, help="shop.orders or shop.public.orders")
@click.option("--execute", is_flag=True, help="Rebuild; without it only the plan is printed.")
@click.option(
    "--snapshot",
    is_flag=True,
    help="First re-read the table from the source (a Debezium incremental snapshot), so keys "
    "whose changes Kafka no longer holds are rebuilt too.",
)
@click.option(
    "--timeout",
    type=float,
    default=900.0,
    show_default=True,
    help="Seconds to wait for the --snapshot to complete.",
)
@click.option(
    "--accept-history-loss",
    is_flag=True,
    help="Rebuild even though Kafka no longer holds the topic's first records.",
)
@json_option()
@click.pass_obj
@guard
def rebuild(
    obj: CliContext,
    table: str,
    execute: bool,
    snapshot: bool,
    timeout: float,
    accept_history_loss: bool,
    as_json: bool,
) -> None:
    """Rebuild one table's current and history tables from its whole topic, swapped in atomically."""
    from cdchub.progress import progress_bar
    from cdchub.replay_service import rebuild_table

    report = rebuild_table(
        obj.config,
        table,
        execute=execute,
        accept_history_loss=accept_history_loss,
        snapshot=snapshot,
        snapshot_timeout_s=timeout,
        progress=note,
        bars=progress_bar,  # one after the other: the snapshot's, then the rebuild's
    )
    _print_plan_report(report, as_json, "nothing changed: add --execute to rebuild")


@cli.command()
@click.option("--table", "table", required=True, help="shop.orders or shop.public.orders.")
@click.option("--where", "condition", help='Only rows matching this condition: "order_id > 100".')
@click.option("--timeout", type=float, default=900.0, show_default=True, help="Seconds to wait.")
@click.option("--no-wait", is_flag=True, help="Do not wait for `cdchub run` to apply the rows.")
@json_option("Print the result as one JSON document.")
@click.pass_obj
@guard
def backfill(
    obj: CliContext,
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
        reader = open_reader_or_none(obj.config)
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
            progress=note,
            bar=bar,
            count_versions=count,
        )
    if as_json:
        emit(result.to_json())
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


@cli.group()
def dlq() -> None:
    """Dead letters: events the hub could not apply (list, show, retry, skip)."""


@dlq.command("list")
@click.option("--all", "include_done", is_flag=True, help="Also skipped and applied letters.")
@json_option()
@click.pass_obj
@guard
def dlq_list(obj: CliContext, include_done: bool, as_json: bool) -> None:
    """List dead letters (open and retrying ones; --all for every one)."""
    from cdchub.dlq_service import list_letters

    found = list_letters(obj.config, include_done=include_done)
    if as_json:
        emit([letter.summary() for letter in found])
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
@json_option()
@click.pass_obj
@guard
def dlq_show(obj: CliContext, letter_id: str, as_json: bool) -> None:
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
        emit(doc)
        return
    for name, value in doc.items():
        click.echo(f"{name}: {value}")


@dlq.command("retry")
@click.argument("letter_ids", nargs=-1)
@click.option("--table", help="Retry every open or skipped letter of this table.")
@json_option("Print {action, changed} (the letter ids) as one JSON document.")
@click.pass_obj
@guard
def dlq_retry(
    obj: CliContext, letter_ids: tuple[str, ...], table: str | None, as_json: bool
) -> None:
    """Apply dead letters again (after fixing the cause); `cdchub run` picks them up."""
    from cdchub.dlq_service import change

    if not letter_ids and table is None:
        raise click.UsageError("give letter ids or --table")
    changed = change(obj.config, "retry", list(letter_ids), table)
    if as_json:
        emit({"action": "retry", "changed": changed})
    else:
        click.echo(f"{len(changed)} dead letter(s) marked for retry: {', '.join(changed)}")


@dlq.command("skip")
@click.argument("letter_ids", nargs=-1, required=True)
@json_option("Print {action, changed} (the letter ids) as one JSON document.")
@click.pass_obj
@guard
def dlq_skip(obj: CliContext, letter_ids: tuple[str, ...], as_json: bool) -> None:
    """Give up on dead letters; a table they halted resumes."""
    from cdchub.dlq_service import change

    changed = change(obj.config, "skip", list(letter_ids))
    if as_json:
        emit({"action": "skip", "changed": changed})
    else:
        click.echo(f"{len(changed)} dead letter(s) skipped: {', '.join(changed)}")


@cli.group()
def schema() -> None:
    """Schema evolution: resume a table stopped by an incompatible column type change."""


@schema.command("accept")
@click.argument("table")
@json_option("Print {accepted} (the table, as in `tables --json`) as one JSON document.")
@click.pass_obj
@guard
def schema_accept(obj: CliContext, table: str, as_json: bool) -> None:
    """Accept TABLE's warehouse columns as altered by hand; its held changes apply on the next run."""
    from connectors.warehouses import open_session
    from ops.schema_admin import accept_schema

    session = open_session(obj.config)
    try:
        found = accept_schema(session, table, obj.config.kafka.group_id)
    finally:
        session.close()
    if as_json:
        emit({"accepted": found.to_json()})
        return
    click.echo(
        f"accepted {found.warehouse_schema}.{found.current_table}: restart `cdchub run` to apply "
        "its held changes"
    )
