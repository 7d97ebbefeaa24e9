"""`cdchub replay`: plan, then apply in this process or through the running hub (see cdc_consumers.replay)."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import httpx
from sqlglot import exp

from cdc_consumers.replay import (
    ReplayPlan,
    ReplaySummary,
    execute_rebuild,
    execute_replay,
    plan_replay,
    rebuild_refusal,
)
from cdchub.backfill import (
    count_reread_versions,
    first_reread_position,
    resolve_table,
    run_backfill,
)
from cdchub.progress import Bar
from connectors.warehouses import dialect_for, open_session
from core.config import DuckDBWarehouse, HubConfig
from core.errors import CdcHubError, ConfigError, MergeError
from merge import sqltree
from merge.runstate import LeaseHeld, RunLease, holders
from merge.session import WarehouseSession
from ops.access import QueryTicket, live_ticket, open_reader
from ops.dashboard import REPLAY_PATH
from ops.history import find_table

Progress = Callable[[str], None]


class ReplayError(CdcHubError):
    """The replay could not be applied (the running hub refused it, or did not answer)."""


def replay_table(
    config: HubConfig,
    table: str,
    *,
    from_offset: int | None = None,
    to_offset: int | None = None,
    from_time: dt.datetime | None = None,
    to_time: dt.datetime | None = None,
    execute: bool = False,
    progress: Progress = print,
    bar: Bar | None = None,
) -> dict[str, Any]:
    """Print-ready plan (and, with `execute`, the summary) of replaying a range of one table's topic.

    Raises:
        ConfigError: unknown table, empty or backwards range.
        LeaseHeld: a `cdchub run` on another machine (or one serving no endpoint) holds the lease.
        ReplayError: the running hub refused or failed the replay.
    """
    reader = open_reader(config)
    try:
        found = find_table(reader, table)  # type: ignore[arg-type]
    finally:
        reader.close()
    topic = f"{found.source}.{found.source_schema}.{found.source_table}"
    name = f"{found.source}.{found.source_schema}.{found.source_table}"
    plan = plan_replay(
        config,
        name,
        topic,
        from_offset=from_offset,
        to_offset=to_offset,
        from_time=from_time,
        to_time=to_time,
    )
    if from_offset is not None and to_offset is not None and to_offset < from_offset:
        raise ConfigError(f"--to-offset {to_offset} is before --from-offset {from_offset}")
    report: dict[str, Any] = {"plan": plan.to_json(), "plan_text": plan.describe(), "summary": None}
    if not execute:
        return report
    summary = _execute(config, plan, progress, bar=bar)
    report["summary"] = summary.to_json()
    report["summary_text"] = summary.describe()
    return report


def rebuild_table(
    config: HubConfig,
    table: str,
    *,
    execute: bool = False,
    accept_history_loss: bool = False,
    snapshot: bool = False,
    snapshot_timeout_s: float = 900.0,
    progress: Progress = print,
    bars: Callable[[str], AbstractContextManager[Bar | None]] | None = None,
) -> dict[str, Any]:
    """Rebuild one table's warehouse tables from its whole topic, in ONE warehouse transaction.

    Its current and history rows are deleted and the topic is re-applied from its first retained
    record; readers see the old tables until the commit, then the rebuilt ones (an atomic swap on
    warehouses whose DDL is transactional; refused on the others). Other tables are not touched.

    With `snapshot`, a Debezium incremental snapshot of the table is taken first (`cdchub backfill`'s
    machinery) and followed to completion, so the topic ends with every current source row: a key
    whose changes Kafka no longer holds is rebuilt from its snapshot row. A snapshot row equal to the
    version the stream already rebuilt writes nothing (merge/plan.py `drop_unchanged_snapshot_rows`).
    The versions the lost records carried stay lost: the report says how many history had before
    and after, and how many keys start at the snapshot.

    Raises:
        ConfigError: Kafka no longer holds the topic's first records (history before them would be
            lost) and neither `snapshot` nor `accept_history_loss` is given; or the warehouse cannot
            swap atomically (checked before any snapshot is taken).
        BackfillError: the snapshot could not start or did not complete in `snapshot_timeout_s`.

    `bars(label)` opens a progress bar for each long step in turn (the snapshot, the rebuild).
    """
    open_bar = bars or (lambda _label: nullcontext(None))
    refusal = rebuild_refusal(dialect_for(config.warehouse.kind))
    if refusal:
        raise ConfigError(refusal)
    reader = open_reader(config)
    try:
        found = find_table(reader, table)  # type: ignore[arg-type]
        versions_before = _history_versions(reader, found)
    finally:
        reader.close()
    topic = f"{found.source}.{found.source_schema}.{found.source_table}"
    plan = plan_replay(config, topic, topic)
    report: dict[str, Any] = {
        "plan": plan.to_json(),
        "plan_text": plan.describe().replace("replay ", "rebuild ", 1),
        "summary": None,
        "snapshot": None,
        "history": {"versions_before": versions_before, "lost_offsets": {}},
    }
    lost = [r for r in plan.ranges if r.start > 0]
    if lost:
        where = ", ".join(f"partition {r.partition} starts at offset {r.start}" for r in lost)
        report["history"]["lost_offsets"] = {str(r.partition): r.start for r in lost}
        message = (
            f"Kafka no longer holds the first records of {topic} ({where}): the versions they "
            "carried would be lost from history"
        )
        if not (accept_history_loss or snapshot):
            raise ConfigError(
                message + "; add --snapshot to read the table's rows from the source again (the "
                "lost versions stay lost), or --accept-history-loss"
            )
        report["warning"] = message
    if snapshot:
        report["plan_text"] += (
            f"\n  first: an incremental snapshot of {topic} (its rows are appended to the topic "
            "and rebuilt with it)"
        )
    if not execute:
        return report
    target = None
    if snapshot:
        target = resolve_table(config, topic)
        with open_bar(f"snapshot {table}") as snapshot_bar:
            done = run_backfill(
                config,
                topic,
                timeout_s=snapshot_timeout_s,
                wait_applied_s=0,  # the rebuild applies the rows itself
                progress=progress,
                bar=snapshot_bar,
            )
        report["snapshot"] = done.to_json()
        plan = plan_replay(config, topic, topic)  # now through the snapshot's rows
        report["plan"] = plan.to_json()
        report["plan_text"] = (
            plan.describe().replace("replay ", "rebuild ", 1)
            + f"\n  (after the incremental snapshot: {done.rows_read} rows read in {done.elapsed_s}s)"
        )
    with open_bar(f"rebuild {table}") as bar:
        summary = _execute(config, plan, progress, rebuild=found, bar=bar)
    report["summary"] = summary.to_json()
    reader = open_reader(config)
    try:
        report["history"]["versions_after"] = _history_versions(reader, found)
        if target is not None:
            since = first_reread_position(config, target, report["snapshot"]["start_offsets"])
            written = count_reread_versions(reader, target, since) or 0
            read = int(report["snapshot"]["rows_read"])
            report["history"]["snapshot_versions"] = written
            report["history"]["snapshot_rows_unchanged"] = max(0, read - written)
    finally:
        reader.close()
    report["summary_text"] = "\n".join(
        [
            f"rebuilt from {summary.records} records ({summary.events} changes): "
            f"{summary.applied} versions written, {summary.already_present} changes wrote none "
            f"(snapshot rows equal to the version before them, repeated records), "
            f"in {summary.elapsed_s:.1f}s",
            *_history_lines(report),
        ]
    )
    return report


def _history_versions(reader: Any, found: Any) -> int:
    query = exp.select(exp.Count(this=exp.Star())).from_(
        sqltree.table(found.history_table, found.warehouse_schema)
    )
    return int(reader.query(query)[0][0])


def _history_lines(report: dict[str, Any]) -> list[str]:
    """What history the rebuild could and could not reconstruct, in words."""
    history = report["history"]
    lines = [
        f"  history versions: {history['versions_before']} before, "
        f"{history['versions_after']} after"
    ]
    if history["lost_offsets"]:
        lines.append(
            "  not reconstructed: the versions carried by records Kafka no longer holds ("
            + ", ".join(
                f"partition {p} before offset {o}" for p, o in history["lost_offsets"].items()
            )
            + ")"
        )
    if "snapshot_versions" in history:
        lines.append(
            f"  snapshot: {report['snapshot']['rows_read']} rows read; "
            f"{history['snapshot_rows_unchanged']} equal to the version rebuilt from the stream "
            f"(no version written); {history['snapshot_versions']} written as versions at the "
            "snapshot (keys whose earlier changes Kafka no longer holds, or that differed)"
        )
    return lines


def _execute(
    config: HubConfig,
    plan: ReplayPlan,
    progress: Progress,
    rebuild: Any = None,
    bar: Bar | None = None,
) -> ReplaySummary:
    try:
        session = open_session(config)
    except MergeError:
        # The DuckDB file is held: by a running hub that takes work, or by something else.
        # Not a ticket left by a killed run: the holder's own, once it has published it.
        ticket = live_ticket(QueryTicket.path(config))
        warehouse = config.warehouse
        if not isinstance(warehouse, DuckDBWarehouse) or ticket is None:
            raise
        progress(f"replay: handing the plan to the running `cdchub run` (pid {ticket.pid})")
        return _through_running(ticket, plan, rebuild)
    try:
        # While the replay applies, no `cdchub run` may start (one writer); a live one refuses us.
        try:
            lease = RunLease.acquire(session, config.kafka.group_id)
        except LeaseHeld:
            # PostgreSQL/Snowflake: a run on this machine holds the lease; it applies the plan
            # between its batches, so the warehouse keeps one writer.
            ticket = running_hub(config, session)
            if ticket is None:
                raise
            progress(f"replay: handing the plan to the running `cdchub run` (pid {ticket.pid})")
            return _through_running(ticket, plan, rebuild)
        try:
            if rebuild is not None:
                tables = (rebuild.warehouse_schema, rebuild.current_table, rebuild.history_table)
                return execute_rebuild(config, session, tables, plan, progress=progress, bar=bar)
            return execute_replay(config, session, plan, progress=progress, bar=bar)
        finally:
            lease.release()
    finally:
        session.close()


def running_hub(config: HubConfig, session: WarehouseSession) -> QueryTicket | None:
    """The endpoint of the `cdchub run` that holds the consumer group's lease, when it runs here.

    The ticket under `state_dir` must belong to the lease's holder (same host, same pid): a ticket
    left by a run that is gone, or a holder on another machine, gives None.
    """
    ticket = QueryTicket.read(QueryTicket.path(config))
    if ticket is None:
        return None
    here = socket.gethostname()
    for holder in holders(session, config.kafka.group_id):
        if holder.host == here and holder.pid == ticket.pid:
            return ticket
    return None


def _through_running(ticket: QueryTicket, plan: ReplayPlan, rebuild: Any = None) -> ReplaySummary:
    body = plan.to_json()
    if rebuild is not None:
        body["rebuild"] = {
            "schema": rebuild.warehouse_schema,
            "current": rebuild.current_table,
            "history": rebuild.history_table,
        }
    doc = post_to_running(ticket, REPLAY_PATH, body, timeout_s=3600.0)
    summary = ReplaySummary(
        records=int(doc["records"]),
        events=int(doc["events"]),
        applied=int(doc["applied"]),
        elapsed_s=float(doc["elapsed_s"]),
        per_table=dict(doc.get("per_table", {})),
    )
    return summary


def post_to_running(
    ticket: QueryTicket,
    path: str,
    body: dict[str, Any],
    *,
    timeout_s: float,
    refused: type[CdcHubError] = ReplayError,
) -> dict[str, Any]:
    """POST a request to the running hub's endpoint; its JSON answer.

    Raises:
        ReplayError: the hub did not answer, or failed the request.
        `refused`: the hub refused the request as invalid (HTTP 400).
    """
    try:
        response = httpx.post(
            ticket.url + path,
            json=body,
            headers={"Authorization": f"Bearer {ticket.token}"},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise ReplayError(
            f"the running `cdchub run` (pid {ticket.pid}) did not answer at {ticket.url}: {exc}"
        ) from exc
    if response.status_code != 200:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        if response.status_code == 400:
            raise refused(message)
        raise ReplayError(message)
    answer: dict[str, Any] = response.json()
    return answer
