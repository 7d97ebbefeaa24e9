"""`cdchub replay`: re-read a range of one table's topic and apply it again.

Merges are replay-safe: a change is identified by (key, source position), and one the history holds
already is skipped (`merge.plan.remove_applied`). So replaying any range leaves history unchanged unless
events were missing from it, and the summary says how many were applied and how many were present.

A replay reads with its own group-less consumer (it never moves the hub's stored offsets) and applies
through the same engine as `cdchub run`. It is the single writer while it applies: run in-process it
takes the run lease (no `cdchub run` can start meanwhile); while a `cdchub run` holds the DuckDB
warehouse, the CLI hands the replay to that process (`ReplayJobs`), which applies it between batches.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlglot import exp

from cdc_consumers.envelope import EnvelopeDecoder
from core.config import HubConfig
from core.errors import ConfigError, KafkaUnavailable
from core.model import ChangeEvent, SourceKind, TableId
from merge.naming import default_namespace
from merge.scd2 import Scd2Engine, TableInfo
from merge.session import WarehouseSession

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
BATCH_EVENTS = 5000


@dataclass(frozen=True)
class ReplayRange:
    """What a replay reads from one partition: offsets [start, end)."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def events(self) -> int:
        return max(0, self.end - self.start)


@dataclass
class ReplayPlan:
    """The partitions and offsets a replay reads, printed before anything is applied."""

    table: str
    topic: str
    ranges: list[ReplayRange]

    @property
    def events(self) -> int:
        return sum(r.events for r in self.ranges)

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON (`--json`, and the body sent to a running hub)."""
        return {
            "table": self.table,
            "topic": self.topic,
            "events": self.events,
            "ranges": [asdict(r) | {"events": r.events} for r in self.ranges],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ReplayPlan:
        """The plan sent by the CLI to a running hub."""
        ranges = [
            ReplayRange(str(r["topic"]), int(r["partition"]), int(r["start"]), int(r["end"]))
            for r in doc["ranges"]
        ]
        return cls(str(doc["table"]), str(doc["topic"]), ranges)

    def describe(self) -> str:
        """The plan as the lines `cdchub replay` prints."""
        lines = [f"replay {self.table}: topic {self.topic}, {self.events} records"]
        for r in self.ranges:
            lines.append(
                f"  partition {r.partition}: offsets {r.start} to {r.end - 1 if r.end else 0}"
                f" ({r.events} records)"
            )
        return "\n".join(lines)


@dataclass
class ReplaySummary:
    """What a replay did."""

    records: int = 0
    events: int = 0
    applied: int = 0
    elapsed_s: float = 0.0
    per_table: dict[str, int] = field(default_factory=dict)

    @property
    def already_present(self) -> int:
        return max(0, self.events - self.applied)

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON."""
        return asdict(self) | {"already_present": self.already_present}

    def describe(self) -> str:
        """One line for the CLI."""
        return (
            f"replayed {self.records} records ({self.events} changes): {self.applied} new versions "
            f"applied, {self.already_present} already present, in {self.elapsed_s:.1f}s"
        )


def _consumer(config: HubConfig) -> Any:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    servers = config.kafka.bootstrap_servers
    try:
        return KafkaConsumer(
            bootstrap_servers=servers,
            group_id=None,
            client_id="cdchub-replay",
            enable_auto_commit=False,
            bootstrap_timeout_ms=15000,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"Kafka is not reachable at {servers}; is the stack up? `cdchub stack status`",
            bootstrap_servers=servers,
        ) from exc


def _ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch, exactly (a float `timestamp() * 1000` can come out 1 ms low)."""
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return (aware - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


def plan_replay(
    config: HubConfig,
    table: str,
    topic: str,
    *,
    from_offset: int | None = None,
    to_offset: int | None = None,
    from_time: dt.datetime | None = None,
    to_time: dt.datetime | None = None,
) -> ReplayPlan:
    """The offsets to re-read per partition of `topic` (`to_offset` inclusive, `to_time` exclusive).

    Times are Kafka record timestamps (when Debezium wrote the change), resolved per partition with
    the broker's time index, as `kafka-consumer-groups --reset-offsets --to-datetime` does.

    Raises:
        ConfigError: the topic does not exist, or the range is empty or backwards.
    """
    from kafka import TopicPartition

    consumer = _consumer(config)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise ConfigError(f"topic {topic} does not exist in Kafka (has the table any change?)")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        first = consumer.beginning_offsets(tps)
        last = consumer.end_offsets(tps)

        def at(ts: dt.datetime) -> dict[Any, int]:
            found = consumer.offsets_for_times({tp: _ms(ts) for tp in tps})
            return {tp: (found[tp].offset if found.get(tp) else last[tp]) for tp in tps}

        starts = at(from_time) if from_time is not None else dict(first)
        ends = at(to_time) if to_time is not None else dict(last)
        ranges = []
        for tp in tps:
            start = max(first[tp], from_offset if from_offset is not None else starts[tp])
            end = min(last[tp], to_offset + 1 if to_offset is not None else ends[tp])
            ranges.append(ReplayRange(topic, tp.partition, start, max(start, end)))
    finally:
        consumer.close()
    return ReplayPlan(table, topic, ranges)


def execute_replay(
    config: HubConfig,
    session: WarehouseSession,
    plan: ReplayPlan,
    progress: Progress = print,
    bar: Callable[[int, int], None] | None = None,
) -> ReplaySummary:
    """Read the plan's ranges and apply them through the SCD2 engine (no stored offset moves).

    `bar(records read, records planned)` is called as it goes; without one, a line every 2 s.
    """
    from kafka import TopicPartition

    started = time.monotonic()
    source = next((s for s in config.sources if plan.topic.startswith(f"{s.name}.")), None)
    if source is None:
        raise ConfigError(f"no configured source owns topic {plan.topic}")
    decoder = EnvelopeDecoder(source.name, SourceKind(source.kind))
    info = TableInfo(source.kind, source.database, default_namespace(source.kind, source.database))
    engine = Scd2Engine(session, config.kafka.group_id)
    summary = ReplaySummary()
    wanted = [r for r in plan.ranges if r.events]
    if not wanted:
        summary.elapsed_s = time.monotonic() - started
        return summary
    consumer = _consumer(config)
    try:
        tps = {TopicPartition(r.topic, r.partition): r for r in wanted}
        consumer.assign(list(tps))
        for tp, r in tps.items():
            consumer.seek(tp, r.start)
        remaining = set(tps)
        pending: dict[TableId, list[ChangeEvent]] = {}
        last_note = time.monotonic()
        while remaining:
            polled = consumer.poll(timeout_ms=2000, max_records=BATCH_EVENTS)
            if not polled and all(consumer.position(tp) >= tps[tp].end for tp in remaining):
                break
            for tp, records in polled.items():
                r = tps[tp]
                for record in records:
                    if record.offset >= r.end:
                        remaining.discard(tp)
                        break
                    summary.records += 1
                    event = decoder.decode(
                        record.key,
                        record.value,
                        _coordinates(record),
                    )
                    if event is not None:
                        pending.setdefault(event.table, []).append(event)
                if consumer.position(tp) >= r.end:
                    remaining.discard(tp)
            if sum(len(v) for v in pending.values()) >= BATCH_EVENTS or not remaining:
                _apply(engine, pending, info, summary)
                pending = {}
            if bar is not None:
                bar(summary.records, plan.events)
            elif time.monotonic() - last_note > 2:
                last_note = time.monotonic()
                progress(f"replay: {summary.records} of {plan.events} records read")
        _apply(engine, pending, info, summary)
        if bar is not None:
            bar(summary.records, plan.events)
    finally:
        consumer.close()
    summary.elapsed_s = round(time.monotonic() - started, 3)
    return summary


def rebuild_refusal(dialect: Any) -> str | None:
    """Why a rebuild cannot swap atomically on this warehouse dialect (None: it can)."""
    if dialect.TRANSACTIONAL_DDL:
        return None
    return (
        f"{dialect.NAME} commits DDL inside a transaction, so a rebuild could not swap "
        "atomically; use `cdchub replay` (which repairs missing versions) instead"
    )


def execute_rebuild(
    config: HubConfig,
    session: WarehouseSession,
    tables: tuple[str, str, str],
    plan: ReplayPlan,
    progress: Progress = print,
    bar: Callable[[int, int], None] | None = None,
) -> ReplaySummary:
    """Delete a table's warehouse rows (`tables`: schema, current, history) and re-apply its topic.

    All in ONE transaction, so readers see the old rows until the commit and the rebuilt ones after
    it. Refused where DDL commits the open transaction (a widening mid-replay would split it).
    """
    refusal = rebuild_refusal(session.dialect)
    if refusal:
        raise ConfigError(refusal)
    schema, current, history = tables
    with session.transaction():
        for name in (history, current):
            session.execute(exp.delete(exp.table_(name, db=schema, quoted=True)))
        return execute_replay(config, session, plan, progress=progress, bar=bar)


def _coordinates(record: Any) -> Any:
    from core.model import KafkaCoordinates

    return KafkaCoordinates(record.topic, record.partition, record.offset, record.timestamp)


def _apply(
    engine: Scd2Engine,
    pending: dict[TableId, list[ChangeEvent]],
    info: TableInfo,
    summary: ReplaySummary,
) -> None:
    if not pending:
        return
    result = engine.apply(pending, dict.fromkeys(pending, info), [])
    summary.events += result.events
    summary.applied += result.versions
    for t in result.tables:
        summary.per_table[str(t.table)] = summary.per_table.get(str(t.table), 0) + t.events


@dataclass
class _Job:
    run: Callable[[WarehouseSession], Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class ReplayJobs:
    """Work handed to a running `cdchub run` by other CLI commands, applied between its batches.

    The run is the warehouse's single writer (DuckDB admits one); a replay asked for while it runs is
    queued here by its HTTP endpoint and executed on the run's own session by `run_pending`.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[_Job] = queue.Queue()

    def submit(self, work: Callable[[WarehouseSession], Any], timeout_s: float) -> Any:
        """Queue `work`, wait until the run has executed it, and return its result (or raise)."""
        job = _Job(work)
        self._queue.put(job)
        if not job.done.wait(timeout_s):
            raise TimeoutError(f"the running hub did not get to the job within {timeout_s:.0f}s")
        if job.error is not None:
            raise job.error
        return job.result

    def run_pending(self, session: WarehouseSession) -> None:
        """Execute every queued job on `session` (called by the runner between batches)."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                job.result = job.run(session)
            except BaseException as exc:  # handed back to the waiting caller
                job.error = exc
            finally:
                job.done.set()


def replay_in_run(
    config: HubConfig, jobs: ReplayJobs, doc: dict[str, Any], timeout_s: float = 3600.0
) -> dict[str, Any]:
    """The endpoint's side: apply a plan sent by the CLI on the run's session; the summary JSON."""
    plan = ReplayPlan.from_json(doc)
    rebuild = doc.get("rebuild")

    def work(session: WarehouseSession) -> ReplaySummary:
        if rebuild is None:
            return execute_replay(config, session, plan, progress=log.info)
        tables = (str(rebuild["schema"]), str(rebuild["current"]), str(rebuild["history"]))
        return execute_rebuild(config, session, tables, plan, progress=log.info)

    summary: ReplaySummary = jobs.submit(work, timeout_s)
    return summary.to_json()


def table_topics(tables: Iterable[Any]) -> dict[str, str]:
    """Every spelling of a replicated table (`source.table`, `source.schema.table`) -> its topic."""
    out = {}
    for t in tables:
        topic = f"{t.source}.{t.source_schema}.{t.source_table}"
        out[f"{t.source}.{t.source_table}"] = topic
        out[topic] = topic
    return out
