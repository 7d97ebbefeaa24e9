"""`cdchub run`: consume every CDC topic and merge into the warehouse."""

from __future__ import annotations

import sys

import click

from cdchub.cli.app import cli
from cdchub.cli.output import EXIT_CHECK_FAILED, CliContext, emit, guard, json_option


@cli.command()
@click.option("--until-idle", type=float, help="Exit 0 once caught up and idle this many seconds.")
@click.option("--max-seconds", type=float, help="Stop after this many seconds.")
@json_option("Print the summary as one JSON document.")
@click.pass_obj
@guard
def run(
    obj: CliContext, until_idle: float | None, max_seconds: float | None, as_json: bool
) -> None:
    """Consume every CDC topic and merge into the warehouse (Ctrl-C stops after the batch)."""
    from cdc_consumers.replay import ReplayJobs, replay_in_run
    from cdc_consumers.runner import Runner
    from cdchub.dlq_service import decide_in_run
    from cdchub.progress import run_progress
    from connectors.dead_letter_topic import DeadLetterTopic
    from connectors.warehouses import open_session
    from merge.runstate import stopped_tables
    from merge.session import WarehouseSession
    from ops.checks import ScheduledChecks
    from ops.service import instrumented

    session = open_session(obj.config)
    jobs = ReplayJobs()  # `cdchub replay --execute` hands its work to this run
    checks = ScheduledChecks(obj.config)
    # `dead_letters.topic`: stored letters are copied to Kafka between batches (after their commit).
    letter_topic = DeadLetterTopic(obj.config)

    def between_batches(batch_session: WarehouseSession) -> None:
        checks(batch_session)
        letter_topic.publish(batch_session)

    try:
        # On a terminal the run's counter is one live line; otherwise plain lines, on change.
        with (
            run_progress() as progress,
            instrumented(
                obj.config,
                session,
                progress=progress,
                replay=lambda doc: replay_in_run(obj.config, jobs, doc),
                dlq=lambda doc: jobs.submit(
                    lambda s: decide_in_run(s, obj.config.kafka.group_id, doc), timeout_s=120
                ),
            ) as instrumentation,
        ):
            runner = Runner(
                obj.config,
                session,
                progress=progress,
                instrumentation=instrumentation,
                jobs=jobs,
                between_batches=between_batches,
            )
            result = runner.run(until_idle=until_idle, max_seconds=max_seconds)
            letter_topic.publish(session, force=True)  # the run's last letters
        stops = stopped_tables(session, obj.config.kafka.group_id)
    finally:
        letter_topic.close()
        session.close()
    if as_json:
        emit(
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
        sys.exit(EXIT_CHECK_FAILED)
