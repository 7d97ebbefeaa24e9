"""`cdchub run`: consume every CDC topic, decode, batch per table and merge, until stopped or idle.

Offsets live in the warehouse, written in the same transaction as the merge (see `merge.scd2`). Kafka is
the buffer: for every partition the runner stores the offset of the earliest record it has not applied
yet (a low-water mark: records parked in an incomplete transaction hold it back), and on every fresh
start it seeks there, so a parked transaction costs memory only and a restart costs a re-read. What is
re-read and was applied already is skipped by the merge's (key, position) idempotency. A process killed
at any point therefore resumes exactly where the warehouse says, with nothing lost or doubled.

Liveness: the run is idle when every assigned partition is read to its end and no row change has been
decoded for the idle time. Transaction markers of transactions without captured rows (PostgreSQL's
heartbeat action query, every transaction of a MariaDB server) and heartbeats are not activity. An
incomplete transaction is judged by its own source's progress (`transactions.TransactionAssembler`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cdc_consumers import gcpolicy, procpolicy
from cdc_consumers.envelope import EnvelopeDecoder
from cdc_consumers.replay import ReplayJobs
from cdc_consumers.transactions import (
    TransactionAssembler,
    decode_boundary,
    is_transaction_topic,
)
from connectors.kafka_stream import KafkaChangeStream
from connectors.signals import signal_collection
from connectors.topics import data_topic_pattern, source_of, subscription_pattern
from core.config import HubConfig, SourceConfig
from core.errors import DecodeError, SchemaChangeError, TableApplyError, UnrepresentableValue
from core.model import ChangeEvent, ColumnType, SourceKind, StreamRecord, TableId
from core.results import BatchResult, RunResult
from core.stream import ChangeStream, Partition
from merge import dead_letters
from merge.naming import default_namespace
from merge.runstate import RunLease, StoppedTable, record_stop, stopped_tables
from merge.scd2 import (
    HELD_FOR_SCHEMA,
    Checkpoint,
    ForcedReleaseRow,
    ParkedChanges,
    Scd2Engine,
    TableInfo,
    column_type_to_json,
)
from merge.session import WarehouseSession
from observability.instrumentation import BatchTimes, NoInstrumentation

log = logging.getLogger(__name__)
# Records per poll call: decoded before the next call, so a batch's raw bytes are never all held.
# Each Debezium JSON record carries its schema (~7 KB a record on the bench's backlog), and a
# poll's records are all allocated at once: 1,000 rather than 2,000 lowered the peak RSS of a
# catch-up by ~18 MB (malloc's heap, measured), for ~2% of its pace (seventh round).
POLL_CHUNK = 1_000
# How long a poll waits for more records of a catch-up batch that has some (a fetch round trip).
CATCH_UP_POLL_MS = 100
# How often a run looks for `cdchub dlq retry|skip` decisions (one small query on the warehouse).
LETTER_CHECK_S = 5.0
Progress = Callable[[str], None]


@dataclass
class _Batch:
    """Events of one batch grouped per table, with what the engine needs to know of each table."""

    events: dict[TableId, list[ChangeEvent]] = field(default_factory=dict)
    infos: dict[TableId, TableInfo] = field(default_factory=dict)
    records: dict[TableId, list[StreamRecord]] = field(default_factory=dict)
    # Transactions released incomplete into this batch (stored with it, counted in `cdchub lag`).
    forced: list[ForcedReleaseRow] = field(default_factory=list)

    def add(self, event: ChangeEvent, source: SourceConfig, record: StreamRecord) -> None:
        table = event.table
        events = self.events.get(table)
        if events is None:
            events = self.events[table] = []
            self.records[table] = []
            self.infos[table] = TableInfo(
                source.kind, source.database, default_namespace(source.kind, source.database)
            )
        events.append(event)
        self.records[table].append(record)

    def after(self, first: list[tuple[ChangeEvent, SourceConfig, StreamRecord]]) -> _Batch:
        """A batch with `first` ahead of this one's events (per table, order is apply order)."""
        out = _Batch(forced=self.forced)
        for event, source, record in first:
            out.add(event, source, record)
        for table, events in self.events.items():
            out.events.setdefault(table, []).extend(events)
            out.records.setdefault(table, []).extend(self.records[table])
            out.infos.setdefault(table, self.infos[table])
        return out


@dataclass
class _Job:
    """One batch's warehouse transaction, handed to the apply thread."""

    batch: _Batch
    records: list[StreamRecord]
    times: BatchTimes
    parked: ParkedChanges
    checkpoints: list[Checkpoint]
    retried: list[tuple[TableId, StreamRecord]]


def _table_of(topic: str) -> TableId:
    """The table a data topic carries (`<source>.<namespace>.<table>`)."""
    source, namespace, table = [*topic.split(".", 2), "", ""][:3]
    return TableId(source, namespace, table)


def _light(record: StreamRecord) -> StreamRecord:
    """The record without its value: coordinates and key only (`Runner._with_values`)."""
    if record.value is None:
        return record
    return StreamRecord(
        record.stream, record.partition, record.offset, record.timestamp, record.key, None
    )


def _address(record: StreamRecord) -> tuple[str, int, int]:
    return (record.stream, record.partition, record.offset)


class Runner:
    """One consumer loop over all configured sources, into one warehouse session."""

    # How often the end offsets are read to judge "caught up" while records flow.
    PROBE_INTERVAL_S = 1.0
    # A partition not read to its end, not paused by flow control, whose position has not moved
    # for this long is fetched again; a consumer that has read nothing for this long while records
    # wait for it (or a topic waits to be assigned) is replaced (client-side stalls: nothing waits
    # forever).
    STALL_S = 30.0

    def __init__(
        self,
        config: HubConfig,
        session: WarehouseSession,
        progress: Progress = print,
        client_id: str = "cdchub-run",
        instrumentation: NoInstrumentation | None = None,
        stream_factory: Callable[[], ChangeStream] | None = None,
        jobs: ReplayJobs | None = None,
        between_batches: Callable[[WarehouseSession], object] | None = None,
    ) -> None:
        self.config = config
        # Work other CLI commands hand to this run (a replay), applied between batches.
        self.jobs = jobs
        # Called with the session between batches (the `run` command's scheduled checks).
        self.between_batches = between_batches
        # Spans and metrics (ops.tracing); the default records nothing.
        self.instrumentation = instrumentation or NoInstrumentation()
        self.session = self.instrumentation.wrap_session(session)
        self.progress = progress
        self.engine = Scd2Engine(
            self.session, config.kafka.group_id, self.instrumentation, notify=progress
        )
        self.decoders = {
            s.name: EnvelopeDecoder(s.name, SourceKind(s.kind)) for s in config.sources
        }
        self.sources = {s.name: s for s in config.sources}
        # Topic -> its source (None: a topic of no configured source), looked up once per topic.
        self._source_of_topic: dict[str, SourceConfig | None] = {}
        self.client_id = client_id
        self.stream_factory = stream_factory or self._kafka_stream
        self._stop = False
        # Tables stopped by an incompatible schema change: their changes are held in the warehouse.
        self.blocked: dict[TableId, str] = {}
        self._held_stored: set[tuple[str, int, int]] = set()
        self._restored_held: list[tuple[ChangeEvent, SourceConfig, StreamRecord]] = []
        self._stops: dict[TableId, StoppedTable] = {}
        # Dead letters: the tables they halted, the letter of each retried record, pending letters.
        self._dlq_blocked: set[TableId] = set()
        self._letter_of: dict[tuple[str, int, int], str] = {}
        self._new_letters: list[dead_letters.DeadLetter] = []
        self._letters_checked_at = -1e9
        self.assemblers: dict[str, TransactionAssembler] = {}
        self._bootstrap_s = 30.0
        self._stream: ChangeStream | None = None
        # The batch being applied on the apply thread (`run`).
        self._in_flight: Future[BatchResult] | None = None
        self._reset()

    def _kafka_stream(self) -> ChangeStream:
        kafka = self.config.kafka
        return KafkaChangeStream.connect(
            kafka.bootstrap_servers,
            kafka.group_id,
            self.client_id,
            kafka.batch_max_events,
            # kafka-python holds a fetch response about three times over while it parses it (the
            # response, each partition's slice, the records), so fetches stay well under a batch:
            # `fetch_max_bytes` (16 MiB) per fetch. One partition may fill it: a catch-up reads
            # mostly one (a big snapshot), and kafka-python fetches a partition again only once
            # all it buffered of it is handed out, so a quarter per partition cost four round
            # trips where one does (fifth round, docs/benchmarks.md); the response's bound is
            # the same.
            fetch_max_bytes=min(kafka.fetch_max_bytes, kafka.batch_max_bytes),
            max_partition_fetch_bytes=min(kafka.fetch_max_bytes, kafka.batch_max_bytes),
            bootstrap_s=self._bootstrap_s,
        )

    def _reset(self) -> None:
        """Fresh in-memory consumer state: a run re-reads from the stored low-water marks."""
        kafka = self.config.kafka
        self.assemblers = {
            s.name: TransactionAssembler(
                s.name,
                kafka.transaction_buffer_max_events,
                kafka.transaction_timeout_s,
                # The signaling table's events are counted in END but dropped before any topic.
                frozenset(c for c in (signal_collection(s),) if c is not None),
            )
            for s in self.config.sources
            if s.transaction_consistent
        }
        # Next offset to read per partition (what this process consumed) and the marks stored.
        self._consumed: dict[Partition, int] = {}
        self._stored: dict[Partition, int] = {}
        self._caught_up_sources: dict[str, bool] = {}
        self._behind: list[str] = []
        # Partitions not read to their end at the last probe, and those paused by flow control.
        self._lagging: set[Partition] = set()
        # Their end offsets at that probe (`_known_waiting`).
        self._ends: dict[Partition, int] = {}
        # Whether the last batch was one of a catch-up (`_poll_batch`).
        self._last_catching_up = False
        self._paused: set[Partition] = set()
        # Per lagging partition: its position and since when it has stood there (`_unstall`).
        self._moved_at: dict[Partition, tuple[int, float]] = {}
        # When the consumer was made; since when its polls come back empty; whether the last probe
        # got answers, and whether it asked the cluster for its topics (`_idle`).
        self._connected_at = time.monotonic()
        self._empty_since: float | None = None
        self._probed_ok = False
        self._probed_fresh = False
        self._all_caught_up = False
        # Records waiting in Kafka at the last probe (end offsets minus positions).
        self._backlog = 0
        self._probed_at = -1e9
        self._changes_seen = 0

    def request_stop(self, *_: Any) -> None:
        """Finish the batch in hand, then return (SIGTERM / SIGINT)."""
        self._stop = True

    def run(
        self,
        until_idle: float | None = None,
        max_seconds: float | None = None,
        handle_signals: bool = True,
        on_batch: Callable[[BatchResult], None] | None = None,
    ) -> RunResult:
        """Consume and apply until stopped, or until caught up and idle for `until_idle` seconds.

        With `handle_signals` (main thread only), SIGTERM/SIGINT finish the batch in hand and return.
        `on_batch` is called after each committed batch (tests use it to watch the warehouse).
        """
        result = RunResult()
        started = time.monotonic()
        self._stop = False
        self.engine.ensure_control()
        # One consumer per group: refuse while another live run holds the lease (merge.runstate).
        lease = RunLease.acquire(self.session, self.config.kafka.group_id)
        for stop in stopped_tables(self.session, self.config.kafka.group_id):
            self.instrumentation.table_stopped(
                TableId(stop.source, stop.source_schema, stop.source_table)
            )
        try:
            migrated = self.engine.migrate_transaction_parking()
            if migrated:
                log.info("%d parked records given back to Kafka (re-read from them)", migrated)
            self._reset()
            self._stored = {
                Partition(t, p): o for (t, p), o in self.engine.stored_checkpoints().items()
            }
            self._restore_held()
            self._dlq_blocked = set()
            self._letter_of = {}
            self._letters_checked_at = -1e9
            self._check_letters(time.monotonic())
            gcpolicy.tune_for_batches()
            # Without a broker the client gives up after this long: within --max-seconds.
            self._bootstrap_s = 30.0 if max_seconds is None else max(1.0, min(30.0, max_seconds))
            stream = self._connect()
        except BaseException:
            lease.release()
            raise
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        previous = {sig: signal.signal(sig, self.request_stop) for sig in signals}
        last_change = time.monotonic()
        last_report = (0.0, -1)
        # One batch at a time is applied on this thread while the main one reads and decodes the
        # next: the warehouse's work (DuckDB releases the GIL) and the fetch round trips overlap
        # the Python work of decoding. Everything else that touches the session runs on the main
        # thread while no batch is in flight (`_settle`).
        applier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cdchub-apply")
        self._in_flight = None
        # The apply thread takes the GIL back after every statement (`procpolicy`).
        with procpolicy.quick_handoffs():
            try:
                while not self._stop:
                    seen = self._changes_seen
                    batch, records, times = self._poll_batch(stream)
                    now = time.monotonic()
                    self._probe(stream, now, force=not records)
                    if self._consumer_stalled(now):
                        stream = self._replace_consumer(stream)
                    self._release(batch, now)
                    self._settle(result, on_batch, stream)
                    lease.renew()
                    if self.jobs is not None:
                        self.jobs.run_pending(self.session)
                    self._check_letters(now)
                    if self.between_batches is not None:
                        self.between_batches(self.session)
                    job = self._prepare(batch, records, times)
                    # The batch is the apply thread's now: its last reference leaves with the job
                    # there, so freeing its events (tens of thousands of objects) is that thread's
                    # work, not this one's (py-spy: ~5% of a catch-up's main thread).
                    del batch, records
                    if job is not None:
                        self._in_flight = applier.submit(self._commit, job)
                    del job
                    self._flow(stream)
                    if self._changes_seen != seen:
                        last_change = now
                    self.instrumentation.sample(stream)
                    if now - last_report[0] > 2 and result.events != last_report[1]:
                        last_report = (now, result.events)
                        self.progress(
                            f"run: {result.events} events applied in {result.batches} batches"
                        )
                    if max_seconds is not None and now - started > max_seconds:
                        result.stopped_by = "max-seconds"
                        break
                    if (
                        until_idle is not None
                        and now - last_change >= until_idle
                        and self._idle(stream, now)
                    ):
                        result.stopped_by = "idle"
                        break
                else:
                    result.stopped_by = "signal"
                # The last batch commits; what runs between batches runs after it too.
                if self._in_flight is not None:
                    self._settle(result, on_batch, stream)
                    if self.between_batches is not None:
                        self.between_batches(self.session)
                # The group's offsets are stored when the run returns (those between batches are
                # not waited for).
                self._commit_courtesy(stream, wait=True)
            finally:
                # A batch in flight commits (or fails) before the stream and the lease are let go.
                applier.shutdown(wait=True)
                self._in_flight = None
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                result.waiting = self.waiting_for()
                stream.close()
                lease.release()
        result.stopped_tables = [
            self._stops[t].describe() for t in self.blocked if t in self._stops
        ]
        result.forced_releases = sum(a.stats.forced_transactions for a in self.assemblers.values())
        result.elapsed_s = time.monotonic() - started
        return result

    def _connect(self) -> ChangeStream:
        """A new consumer, subscribed; its partitions start where this run's positions say."""
        stream = self._stream = self.stream_factory()
        stream.subscribe(
            subscription_pattern(self.sources, self.assemblers), self._on_assign(stream)
        )
        self._paused = set()
        self._moved_at = {}
        self._connected_at = time.monotonic()
        self._empty_since = None
        return stream

    def _consumer_stalled(self, now: float) -> bool:
        """The broker answered the last probe and records wait (or a topic waits to be assigned),
        yet every poll for `STALL_S` came back empty: the consumer lost its place in the group and
        did not find it again (seen under load with kafka-python 3.0: partitions at offset 0 for
        minutes, a new topic never assigned). Time spent applying a batch does not count."""
        return (
            bool(self._behind)
            and self._probed_ok
            and self._empty_since is not None
            and now - self._empty_since >= self.STALL_S
            and now - self._connected_at >= self.STALL_S
        )

    def _replace_consumer(self, stream: ChangeStream) -> ChangeStream:
        log.warning(
            "the Kafka consumer has read nothing for %.0fs while records wait (%s): replacing it",
            time.monotonic() - (self._empty_since or 0.0),
            "; ".join(self._behind[:3]),
        )
        try:
            stream.close()
        except Exception as exc:  # it is being replaced because it misbehaves
            log.debug("closing the stalled consumer failed: %s", exc)
        return self._connect()

    def _settle(
        self,
        result: RunResult,
        on_batch: Callable[[BatchResult], None] | None,
        stream: ChangeStream,
    ) -> None:
        """Wait for the batch in flight, if any, and account for it (main thread).

        Raises what applying it raised (a terminal error stops the run, as it always did).
        """
        future, self._in_flight = self._in_flight, None
        if future is None:
            return
        began = time.perf_counter()
        batch = future.result()
        result.apply_wait_s += time.perf_counter() - began
        self._account(result, batch)
        if on_batch is not None:
            on_batch(batch)
        self._commit_courtesy(stream)

    def _on_assign(self, stream: ChangeStream) -> Callable[[list[Partition]], None]:
        def position(assigned: list[Partition]) -> None:
            # After a rebalance every assigned partition is fetched: kafka-python 3.0 keeps the
            # pause of a partition it keeps (a topic created mid-run rebalances), so resume them
            # rather than forget them paused (a partition never read again: a stall). Flow control
            # decides afresh after the next batch.
            again = self._paused & set(assigned)
            if again:
                stream.resume(again)
            self._paused = set()
            for partition in assigned:
                # A partition this process read already keeps its place (its parked records are in
                # memory); one it has not read starts at the warehouse's low-water mark.
                offset = self._consumed.get(partition, self._stored.get(partition))
                if offset is None:
                    stream.seek_to_beginning(partition)
                else:
                    stream.seek(partition, offset)

        return position

    def _poll_batch(self, stream: ChangeStream) -> tuple[_Batch, list[StreamRecord], BatchTimes]:
        """Poll until the batch is full (events or bytes) or the batch wait has passed since its
        first record; decode each poll's records as they arrive.

        The wait bounds how long a first record waits for company. While the last probe saw at
        least a batch of records waiting in Kafka, they need no waiting for: the batch fills to its
        size limits, however long polling them takes (each batch costs a fixed set of statements
        per table, so a catch-up wants full ones); an empty poll still ends it. So does the batch
        after such a batch: the rest of a catch-up, read at once, need not wait for company (its
        last batch waited 0.5 s, ~5% of a catch-up, measured).

        Decoding as they arrive keeps one poll's raw bytes in memory, not a batch's: the batch
        holds the decoded changes and the records' coordinates (`_light`).
        """
        limit = self.config.kafka.batch_max_events
        max_bytes = self.config.kafka.batch_max_bytes
        wait_s = self.config.kafka.batch_max_wait_ms / 1000
        catching_up = self._backlog >= limit or self._last_catching_up
        self._last_catching_up = self._backlog >= limit
        polled_at = time.time_ns()
        batch = _Batch()
        records: list[StreamRecord] = []
        size = 0
        decode_s = 0.0
        first_at: float | None = None
        stretch = self.config.kafka.batch_stretch
        stretched_limit, stretched_bytes = int(limit * stretch), max_bytes * stretch
        while (len(records) < limit and size < max_bytes) or (
            # Full, while the batch before it is still being applied: waiting for that would idle
            # this thread (~10% of a catch-up's streamed part, measured), so it keeps reading.
            catching_up
            and len(records) < stretched_limit
            and size < stretched_bytes
            and self._in_flight is not None
            and not self._in_flight.done()
        ):
            timeout = 500
            if first_at is not None and not catching_up:
                timeout = max(0, int((first_at + wait_s - time.monotonic()) * 1000))
                if self._known_waiting():
                    # Records the last probe saw are still unread: a poll that does not bring
                    # them within a fetch's round trip finds their partitions paused by flow
                    # control (which decides between batches), and waiting out the batch wait
                    # would wait for nothing (~1 s of a catch-up's last seconds, measured).
                    timeout = min(timeout, CATCH_UP_POLL_MS)
            elif first_at is not None:
                # Catching up, records come at once: a poll that finds none within a fetch's round
                # trip finds the partitions that have them paused (flow control), and the batch
                # ends rather than wait 500 ms for nothing (~10% of a catch-up, measured).
                timeout = CATCH_UP_POLL_MS
            elif self._in_flight is not None:
                # A batch is being applied: come back soon to hand it over when it has committed.
                timeout = 50
            cap = limit if len(records) < limit else stretched_limit
            polled = stream.poll(max(1, min(cap - len(records), POLL_CHUNK)), timeout)
            if polled:
                self._empty_since = None
            elif self._empty_since is None:
                self._empty_since = time.monotonic()
            began = time.perf_counter()
            # The raw bytes a batch reads bound its memory (its decoded changes stay until it
            # commits).
            size += self._route_all(polled, batch, time.monotonic(), records)
            if polled and self.assemblers:
                # Transactions complete now join this batch, and flow control decides after every
                # poll rather than every batch: cutting batches short for it while multi-table
                # transactions streamed made 52-55 batches of the bench's 400,002 events where 46-49
                # do now (each batch costs a fixed set of statements per table it touches).
                self._release(batch, time.monotonic())
                self._flow(stream)
            decode_s += time.perf_counter() - began
            if records and first_at is None:
                first_at = time.monotonic()
            if first_at is None or not polled:
                break
            if not catching_up and time.monotonic() - first_at >= wait_s:
                break
        return batch, records, BatchTimes(polled_at, time.time_ns(), decode_s)

    def _route_all(
        self, polled: list[StreamRecord], batch: _Batch, now: float, out: list[StreamRecord]
    ) -> int:
        """Route one poll's records, appending their coordinates to `out` (the raw bytes are not
        kept); the bytes they held."""
        size = 0
        last: dict[tuple[str, int], int] = {}
        sources = self._source_of_topic
        for record in polled:
            last[(record.stream, record.partition)] = record.offset
            topic = record.stream
            if record.value is not None:
                size += len(record.value)
            if record.key is not None:
                size += len(record.key)
            source = sources.get(topic)
            if source is None and topic not in sources:
                source = sources[topic] = self.sources.get(source_of(topic))
            if source is not None:
                record = self._route(source, record, batch, now)
            out.append(_light(record))
        for (topic, partition), offset in last.items():
            self._consumed[Partition(topic, partition)] = offset + 1
        return size

    def _known_waiting(self) -> bool:
        """Whether records the last probe saw in Kafka are still unread by this process."""
        consumed = self._consumed
        return any(consumed.get(p, 0) < end for p, end in self._ends.items())

    def _probe(self, stream: ChangeStream, now: float, force: bool = False) -> None:
        """Judge, per source, whether every one of its partitions is read to its end.

        Reads the end offsets at most once a second while records flow (every empty poll when
        they do not). A topic Debezium created since the last rebalance (a table whose snapshot just
        started) is not assigned yet: its source is not caught up, whatever the assigned partitions say.
        """
        # A forced probe after one that read cached topics is not throttled: an idle decision
        # wants the topics as the cluster has them now.
        throttle = (0.25 if self._probed_fresh else 0.0) if force else self.PROBE_INTERVAL_S
        if now - self._probed_at < throttle:
            return
        self._probed_at = now
        try:
            pattern = re.compile(data_topic_pattern(self.sources))
            # While records flow, the client's view of the subscription (a few seconds old at
            # most) will do: asking the cluster blocks this thread ~25 ms a probe (py-spy: 2.5%
            # of a catch-up). An idle decision asks the cluster.
            topics = stream.topics() if force else stream.subscribed_topics()
            self._probed_fresh = force
            existing = {t for t in topics if pattern.match(t)}
            assignment = stream.assignment()
            ends = stream.end_offsets(assignment)
            positions = {p: stream.position(p) for p in assignment}
        except Exception as exc:  # a rebalance in progress: judge again at the next probe
            log.debug("caught-up probe failed: %s", exc)
            self._probed_ok = False
            self._caught_up_sources = {}
            self._all_caught_up = False
            self._backlog = 0
            self._ends = {}
            return
        self._probed_ok = True
        unassigned = existing - {p.topic for p in assignment}
        lagging = sorted(p for p in assignment if positions[p] < ends.get(p, 0))
        self._unstall(stream, lagging, positions, ends, now)
        self._lagging = set(lagging)
        self._ends = {p: ends[p] for p in lagging}
        self._backlog = sum(ends.get(p, 0) - positions[p] for p in lagging)
        self._behind = [
            f"{p.topic}[{p.partition}] at offset {positions[p]} of {ends.get(p, 0)}"
            for p in lagging
        ] + [f"{t} (not assigned yet)" for t in sorted(unassigned)]
        behind_sources = {source_of(p.topic) for p in lagging} | {source_of(t) for t in unassigned}
        self._caught_up_sources = {name: name not in behind_sources for name in self.sources}
        self._all_caught_up = not self._behind

    def _unstall(
        self,
        stream: ChangeStream,
        lagging: list[Partition],
        positions: dict[Partition, int],
        ends: dict[Partition, int],
        now: float,
    ) -> None:
        """Fetch again a partition that has records to read but has not moved for `STALL_S`
        while flow control did not hold it (the consumer client lost track of it)."""
        moved = self._moved_at
        for p in lagging:
            seen = moved.get(p)
            if seen is None or seen[0] != positions[p] or p in self._paused:
                moved[p] = (positions[p], now)
            elif now - seen[1] >= self.STALL_S:
                log.warning(
                    "%s[%d] has not moved from offset %d (end %d) for %.0fs although nothing "
                    "holds it: fetching it again",
                    p.topic,
                    p.partition,
                    positions[p],
                    ends.get(p, 0),
                    now - seen[1],
                )
                stream.resume([p])
                stream.seek(p, positions[p])
                moved[p] = (positions[p], now)
        for p in set(moved) - set(lagging):
            del moved[p]

    def _parked(self) -> int:
        return sum(a.parked_events for a in self.assemblers.values())

    def _pause_at(self) -> int:
        """Parked events from which flow control pauses the partitions that are ahead."""
        kafka = self.config.kafka
        return max(1, min(kafka.batch_max_events // 2, kafka.transaction_buffer_max_events // 5))

    def _flow(self, stream: ChangeStream) -> None:
        """Bound the parked backlog by reading where it helps (transaction-consistent sources);
        decided after every poll of a batch, once the transactions it completed are released.

        Catching up, one table's topic (a big snapshot) is read far behind the others, and every
        transaction that also touched it waits, parked in memory, for its events there. Past
        `_pause_at` parked events, the partitions in which the transaction holding its source back
        already has all its events, or did not touch, are paused
        (`TransactionAssembler.topics_ahead`); the others, the ones it waits for among them, are
        read on. Below half of it, or when every partition
        not read to its end is paused (pausing could then only stall), all are resumed. The
        transaction topics are never paused. Memory stays bounded without releasing anything
        incomplete; `transaction_buffer_max_events` remains the hard bound.
        """
        if not self.assemblers:
            return
        parked = self._parked()
        bound = self._pause_at()
        want: set[Partition] = set()
        if parked >= bound // 2:
            assigned = stream.assignment()
            topics = {p.topic for p in assigned}
            ahead = set().union(*(a.topics_ahead(topics) for a in self.assemblers.values()))
            candidates = {p for p in assigned if p.topic in ahead}
            # Between half the bound and the bound, keep what is paused (while still ahead).
            want = candidates if parked >= bound else candidates & self._paused
            if want and self._lagging and self._lagging <= want:
                want = set()
        if want == self._paused:
            return
        resume, pause = self._paused - want, want - self._paused
        if resume:
            stream.resume(resume)
        if pause:
            stream.pause(pause)
            log.debug("flow control: %d events parked; paused %s", parked, sorted(pause))
        self._paused = want

    def _idle(self, stream: ChangeStream, now: float) -> bool:
        """Caught up everywhere, with nothing held back and no held change waiting for a retry."""
        self._probe(stream, now, force=True)
        return self._all_caught_up and not self._holding() and not self._restored_held

    def _holding(self) -> bool:
        return any(a.holding for a in self.assemblers.values())

    def waiting_for(self) -> list[str]:
        """What keeps the run from being idle: held transactions and partitions not read to the end."""
        out = [w.describe() for a in self.assemblers.values() if (w := a.waiting()) is not None]
        return out + list(self._behind)

    def _with_values(self, records: list[StreamRecord]) -> list[StreamRecord]:
        """`records` with their raw bytes, read again from Kafka where only coordinates were kept
        (to hold a stopped table's records, or to dead-letter one).

        Raises:
            DecodeError: a record is no longer in Kafka (retention removed it since it was read).
        """
        missing = [r for r in records if r.value is None]
        if not missing:
            return records
        if self._stream is None:
            raise RuntimeError("no stream to read records again from")
        found = self._stream.fetch([(r.stream, r.partition, r.offset) for r in missing])
        out = []
        for r in records:
            if r.value is None:
                again = found.get((r.stream, r.partition, r.offset))
                if again is None or again.value is None:
                    raise DecodeError(
                        "a record read earlier is no longer in Kafka (retention?); it cannot be "
                        "held or dead-lettered",
                        topic=r.stream,
                        partition=r.partition,
                        offset=r.offset,
                    )
                r = again
            out.append(r)
        return out

    def _commit_courtesy(self, stream: ChangeStream, wait: bool = False) -> None:
        """Store the low-water marks in Kafka too, so lag tools read the truth (0 when it is 0).

        Between batches the commit is not waited for (a round trip of the consumer's thread per
        batch); the run's last one is, so the group's offsets are stored when the run returns.
        """
        try:
            stream.commit(dict(self._stored), wait=wait)
        except Exception as exc:  # courtesy commit only; the warehouse holds the truth
            log.debug("kafka commit failed: %s", exc)

    def _restore_held(self, only: TableId | None = None) -> None:
        """Reload the records held for a stopped table (their offsets are past them already).

        With `only`, reload that table's records (a dead letter resolved mid-run) and keep the rest.
        """
        if only is None:
            self._held_stored = set()
            self._restored_held = []
        for record, reason in self.engine.parked_records():
            source = self.sources.get(source_of(record.stream))
            if source is None or reason != HELD_FOR_SCHEMA:
                continue  # the source left the config: its records stay stored
            if only is not None and _table_of(record.stream) != only:
                continue
            # Retried in the first batch: the operator may have fixed the warehouse column.
            event = self.decoders[source.name].decode(record.key, record.value, record.coordinates)
            if event is not None:
                self._restored_held.append((event, source, record))
                self._held_stored.add(_address(record))

    def _route(
        self, source: SourceConfig, record: StreamRecord, batch: _Batch, now: float
    ) -> StreamRecord:
        """Decode one record and hand it to its transaction assembler or straight to the batch.

        Returns the record as kept: without its raw bytes (Kafka is the buffer: `_with_values`
        reads them again in the rare case they are needed), unless its table is stopped and its
        records are to be held.
        """
        assembler = self.assemblers.get(source.name)
        if is_transaction_topic(record.stream):
            if assembler is not None:
                boundary = decode_boundary(record, SourceKind(source.kind))
                if boundary is not None:
                    record = _light(record)
                    assembler.add_boundary(boundary, record, now)
            return record
        try:
            event = self.decoders[source.name].decode(record.key, record.value, record.coordinates)
        except DecodeError as exc:  # a poison record: to the dead-letter store, under its policy
            self._dead_letter(_table_of(record.stream), record, "decode", str(exc))
            return record
        if event is None:
            return record
        self._changes_seen += 1
        if event.table not in self.blocked:
            record = _light(record)
        if assembler is not None and assembler.add_event(event, record, now):
            return record
        batch.add(event, source, record)
        return record

    def _checkpoints(self) -> list[Checkpoint]:
        """Per partition read, the low-water mark: the earliest record not yet applied or stored."""
        low: dict[tuple[str, int], int] = {}
        for assembler in self.assemblers.values():
            low.update(assembler.low_water())
        out = []
        for partition, consumed in self._consumed.items():
            mark = min(consumed, low.get((partition.topic, partition.partition), consumed))
            if self._stored.get(partition) != mark:
                out.append(Checkpoint(partition.topic, partition.partition, mark))
        return out

    def _release(self, batch: _Batch, now: float) -> None:
        """Add the transactions now complete (or force-released) to the batch."""
        for name, assembler in self.assemblers.items():
            caught_up = self._caught_up_sources.get(name, False)
            for event, record in assembler.release(now, caught_up):
                batch.add(event, self.sources[name], record)
            for f in assembler.take_forced():
                batch.forced.append(
                    ForcedReleaseRow(f.source, f.tx_id, f.arrived, f.expected, f.reason)
                )
                self.instrumentation.transactions_forced(f.source, f.reason, 1)

    def _prepare(
        self,
        batch: _Batch,
        records: list[StreamRecord],
        times: BatchTimes,
    ) -> _Job | None:
        """The batch's transaction, once the one before it committed (main thread): held changes
        given back for a retry first, stopped tables' events held, the low-water marks; None when
        there is nothing to write."""
        held, self._restored_held = self._restored_held, []
        retried = [(event.table, record) for event, _, record in held]
        if held:
            batch = batch.after(held)
        parked = ParkedChanges(forced=batch.forced)
        for table in [t for t in batch.events if t in self.blocked]:
            self._hold(batch, table, parked)
        parked.dead, self._new_letters = self._new_letters, []
        checkpoints = self._checkpoints()
        if not (
            checkpoints or batch.events or parked.held or parked.forced or retried or parked.dead
        ):
            return None
        return _Job(batch, records, times, parked, checkpoints, retried)

    def _commit(self, job: _Job) -> BatchResult:
        """Apply one batch in one warehouse transaction (the apply thread).

        A table that fails is held (atomically with the offsets) and the rest committed; the event
        at fault is then found (`_isolate`).
        """
        batch, parked, retried, checkpoints = job.batch, job.parked, job.retried, job.checkpoints
        failed: dict[TableId, tuple[list[tuple[ChangeEvent, StreamRecord]], TableInfo, str]] = {}
        with self.instrumentation.batch(job.records, job.times) as watch:
            while True:
                # Retried held records of tables that are not stopped leave the store with this
                # batch.
                parked.removed = [r for t, r in retried if t not in self.blocked]
                parked.resolved = [
                    self._letter_of[a]
                    for t, r in retried
                    if t not in self.blocked and (a := _address(r)) in self._letter_of
                ]
                try:
                    result = self.engine.apply(batch.events, batch.infos, checkpoints, parked)
                except (TableApplyError, UnrepresentableValue) as exc:
                    if not isinstance(exc.table_id, TableId) or exc.table_id not in batch.events:
                        raise
                    table = exc.table_id
                    # Commit the others (this table's records held, atomically with the offsets),
                    # then find the event at fault (`_isolate`).
                    batch.records[table] = self._with_values(batch.records[table])
                    pairs = list(zip(batch.events[table], batch.records[table], strict=True))
                    failed[table] = (pairs, batch.infos[table], str(exc))
                    self.blocked[table] = str(exc)
                    self._hold(batch, table, parked)
                    continue
                except SchemaChangeError as exc:
                    table = exc.table_id
                    if not isinstance(table, TableId) or table not in batch.events:
                        raise
                    self.blocked[table] = str(exc)
                    self._record_stop(table, exc)
                    log.error("%s (table %s stopped; its changes are held)", exc, table)
                    self.progress(f"run: {self._stops[table].describe()}")
                    self._hold(batch, table, parked)
                    continue
                watch.applied(result)
                break
        for table, record in retried:
            if table not in self.blocked:
                self._held_stored.discard(_address(record))
        for cp in checkpoints:
            self._stored[Partition(cp.stream, cp.partition)] = cp.next_offset
        for letter in parked.dead:
            self.instrumentation.dead_lettered(letter.source, letter.table_name, letter.status)
        for table, (pairs, info, _error) in failed.items():
            self._isolate(table, pairs, info)
        return result

    # -- dead letters ------------------------------------------------------------------------

    def _policy(self, table: TableId) -> str:
        return self.config.dead_letters.policy_for(str(table))

    def _dead_letter(
        self,
        table: TableId,
        record: StreamRecord,
        kind: str,
        error: str,
        event: ChangeEvent | None = None,
    ) -> dead_letters.DeadLetter:
        """Queue a letter for the batch's transaction; under `halt`, stop the table."""
        halt = self._policy(table) == "halt"
        letter = dead_letters.new_letter(
            self.config.kafka.group_id,
            table.source,
            f"{table.namespace}.{table.table}",
            record,
            kind,
            error,
            event_key=json.dumps(list(event.key), default=str) if event is not None else "",
            position=event.position if event is not None else "",
            status=dead_letters.OPEN if halt else dead_letters.SKIPPED,
            copy_topic=self.config.dead_letters.topic,
        )
        self._new_letters.append(letter)
        where = f"{record.stream}[{record.partition}]@{record.offset}"
        if halt:
            self.blocked[table] = f"dead letter {letter.letter_id}: {error}"
            self._dlq_blocked.add(table)
            log.error(
                "table %s stopped: %s at %s (dead letter %s)", table, error, where, letter.letter_id
            )
            self.progress(
                f"run: table {table} stopped: {error} ({where}); the event is dead letter "
                f"{letter.letter_id}: fix the cause, then `cdchub dlq retry {letter.letter_id}` "
                f"(or `cdchub dlq skip {letter.letter_id}`); the other tables go on"
            )
        else:
            log.warning(
                "skipped an event of %s: %s at %s (dead letter %s)",
                table,
                error,
                where,
                letter.letter_id,
            )
        return letter

    def _isolate(
        self, table: TableId, pairs: list[tuple[ChangeEvent, StreamRecord]], info: TableInfo
    ) -> None:
        """Apply a failed table's events up to the one at fault; dead-letter it, per the policy.

        The longest prefix that applies is found by bisection, each successful part committed
        with the removal of its held records. The event at fault becomes a dead letter (or, if it
        was a retried letter, that letter is reopened with the new error). Under `halt` the rest
        stays held and the table stays stopped; under `skip` the search goes on past it.
        """
        last_error = ""

        def attempt(part: list[tuple[ChangeEvent, StreamRecord]]) -> bool:
            nonlocal last_error
            resolved = [
                self._letter_of[a] for _, r in part if (a := _address(r)) in self._letter_of
            ]
            try:
                self.engine.apply(
                    {table: [e for e, _ in part]},
                    {table: info},
                    [],
                    ParkedChanges(removed=[r for _, r in part], resolved=resolved),
                )
            except (TableApplyError, UnrepresentableValue) as exc:
                last_error = str(exc)
                return False
            for _, r in part:
                self._held_stored.discard(_address(r))
            return True

        rest = pairs
        while rest:
            if attempt(rest):
                rest = []
                break
            lo, hi = 0, len(rest)  # rest[:lo] applied; rest[lo:hi] fails
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if attempt(rest[lo:mid]):
                    lo = mid
                else:
                    hi = mid
            event, record = rest[lo]
            known = self._letter_of.get(_address(record))
            with self.session.transaction():
                if known is not None:
                    dead_letters.set_status(
                        self.session,
                        self.config.kafka.group_id,
                        [known],
                        dead_letters.OPEN,
                        last_error,
                    )
                else:
                    letter = self._dead_letter(table, record, "apply", last_error, event)
                    self._new_letters.remove(letter)
                    dead_letters.store(self.session, [letter])
                    self.instrumentation.dead_lettered(
                        letter.source, letter.table_name, letter.status
                    )
                self.engine.apply({}, {}, [], ParkedChanges(removed=[record]))
            self._held_stored.discard(_address(record))
            if known is not None:
                self.blocked[table] = f"dead letter {known}: {last_error}"
                self._dlq_blocked.add(table)
            if table in self._dlq_blocked:
                return  # halted: what follows stays held
            rest = rest[lo + 1 :]
        self.blocked.pop(table, None)
        self._dlq_blocked.discard(table)

    def _check_letters(self, now: float) -> None:
        """Pick up `cdchub dlq retry/skip` decisions (every `LETTER_CHECK_S`, and at start)."""
        if now - self._letters_checked_at < LETTER_CHECK_S:
            return
        self._letters_checked_at = now
        letters = dead_letters.letters(
            self.session,
            self.config.kafka.group_id,
            statuses=(dead_letters.OPEN, dead_letters.RETRY),
        )
        open_tables = set()
        for letter in letters:
            table = _table_of(letter.topic)
            if letter.status == dead_letters.OPEN:
                open_tables.add(table)
                if table not in self._dlq_blocked:  # a halt recorded by an earlier run
                    self.blocked[table] = f"dead letter {letter.letter_id}: {letter.error}"
                    self._dlq_blocked.add(table)
                continue
            record = letter.record
            if _address(record) in self._letter_of:
                continue  # already on its way
            source = self.sources.get(letter.source)
            if source is None:
                continue
            try:
                event = self.decoders[source.name].decode(
                    record.key, record.value, record.coordinates
                )
            except DecodeError as exc:
                with self.session.transaction():
                    dead_letters.set_status(
                        self.session,
                        self.config.kafka.group_id,
                        [letter.letter_id],
                        dead_letters.OPEN,
                        str(exc),
                    )
                open_tables.add(table)
                continue
            self._letter_of[_address(record)] = letter.letter_id
            if event is not None:
                self._restored_held.append((event, source, record))
                self._held_stored.add(_address(record))
        # A halted table whose letters were all retried or skipped resumes, its held events first.
        for table in list(self._dlq_blocked):
            if table not in open_tables:
                self._dlq_blocked.discard(table)
                self.blocked.pop(table, None)
                self._restore_held(only=table)

    def _record_stop(self, table: TableId, exc: SchemaChangeError) -> None:
        """Store the stop in the warehouse, where `lag`, the dashboard and `schema accept` see it."""
        new_type = exc.new_column_type
        stop = StoppedTable(
            table.source,
            table.namespace,
            table.table,
            str(exc.context.get("column", "")),
            str(exc.context.get("old_type", "")),
            str(exc.context.get("new_type", "")),
            column_type_to_json(new_type) if isinstance(new_type, ColumnType) else "",
            exc.message,
            dt.datetime.now(dt.UTC),
        )
        self._stops[table] = stop
        record_stop(self.session, self.config.kafka.group_id, stop)
        self.instrumentation.table_stopped(table)

    def _hold(self, batch: _Batch, table: TableId, parked: ParkedChanges) -> None:
        """Move a stopped table's events out of the batch into the warehouse's held records."""
        batch.events.pop(table, None)
        batch.infos.pop(table, None)
        for record in self._with_values(batch.records.pop(table, [])):
            address = _address(record)
            if address not in self._held_stored:  # a retried record is stored already
                parked.held.append(record)
                self._held_stored.add(address)

    @staticmethod
    def _account(result: RunResult, batch: BatchResult) -> None:
        result.batches += 1
        result.events += batch.events
        result.versions += batch.versions
        for table in batch.tables:
            name = str(table.table)
            result.per_table[name] = result.per_table.get(name, 0) + table.events
            result.lags_ms.extend(table.lags_ms)
