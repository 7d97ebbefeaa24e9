"""`cdchub run`: consume every CDC topic, decode, batch per table and merge, until stopped or idle.

Offsets live in the warehouse, written in the same transaction as the merge (see `merge.scd2`). On every
partition assignment the consumer seeks to the warehouse's offset (or to the beginning when the
warehouse has none), so Kafka's own committed offsets are only a courtesy for lag tools. A process
killed at any point therefore resumes exactly where the warehouse says it stopped.
"""

from __future__ import annotations

import logging
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition

from cdc_consumers import gcpolicy
from cdc_consumers.envelope import EnvelopeDecoder
from cdc_consumers.model import ChangeEvent, SourceKind, StreamRecord, TableId
from cdc_consumers.topics import data_topic_pattern, source_of, subscription_pattern
from cdc_consumers.transactions import (
    TransactionAssembler,
    decode_boundary,
    is_transaction_topic,
    raw_record,
)
from cdchub.config import HubConfig, SourceConfig
from cdchub.errors import SchemaChangeError
from merge.naming import default_namespace
from merge.scd2 import (
    HELD_FOR_SCHEMA,
    BatchResult,
    Checkpoint,
    ParkedChanges,
    Scd2Engine,
    TableInfo,
)
from merge.session import WarehouseSession
from observability.instrumentation import NoInstrumentation

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class RunResult:
    """What a run applied, for the CLI summary and the demo."""

    batches: int = 0
    events: int = 0
    versions: int = 0
    per_table: dict[str, int] = field(default_factory=dict)
    lags_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped_by: str = ""


@dataclass
class _Batch:
    """Events of one batch grouped per table, with what the engine needs to know of each table."""

    events: dict[TableId, list[ChangeEvent]] = field(default_factory=dict)
    infos: dict[TableId, TableInfo] = field(default_factory=dict)
    records: dict[TableId, list[StreamRecord]] = field(default_factory=dict)

    def add(self, event: ChangeEvent, source: SourceConfig, record: StreamRecord) -> None:
        self.events.setdefault(event.table, []).append(event)
        self.records.setdefault(event.table, []).append(record)
        if event.table not in self.infos:
            self.infos[event.table] = TableInfo(
                source.kind, source.database, default_namespace(source.kind, source.database)
            )


def _address(record: StreamRecord) -> tuple[str, int, int]:
    return (record.stream, record.partition, record.offset)


class _SeekToWarehouse(ConsumerRebalanceListener):
    """On assignment, position every partition at the offset the warehouse committed."""

    def __init__(self, consumer: KafkaConsumer, engine: Scd2Engine) -> None:
        self.consumer = consumer
        self.engine = engine

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    def on_partitions_assigned(self, assigned: Any) -> None:
        stored = self.engine.stored_checkpoints()
        for tp in assigned:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)


class Runner:
    """One consumer loop over all configured sources, into one warehouse session."""

    def __init__(
        self,
        config: HubConfig,
        session: WarehouseSession,
        progress: Progress = print,
        client_id: str = "cdchub-run",
        instrumentation: NoInstrumentation | None = None,
    ) -> None:
        self.config = config
        # Spans and metrics (observability.tracing); the default records nothing.
        self.instrumentation = instrumentation or NoInstrumentation()
        self.session = self.instrumentation.wrap_session(session)
        self.progress = progress
        self.engine = Scd2Engine(self.session, config.kafka.group_id, self.instrumentation)
        self.decoders = {
            s.name: EnvelopeDecoder(s.name, SourceKind(s.kind)) for s in config.sources
        }
        self.sources = {s.name: s for s in config.sources}
        self.assemblers = {
            s.name: TransactionAssembler(
                s.name,
                config.kafka.transaction_buffer_max_events,
                config.kafka.transaction_timeout_s,
            )
            for s in config.sources
            if s.transaction_consistent
        }
        self.client_id = client_id
        self._stop = False
        # Tables stopped by an incompatible schema change: their changes are held in the warehouse.
        self.blocked: dict[TableId, str] = {}
        self._held_stored: set[tuple[str, int, int]] = set()
        self._restored_held: list[tuple[ChangeEvent, SourceConfig, StreamRecord]] = []

    def _consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            bootstrap_servers=self.config.kafka.bootstrap_servers,
            group_id=self.config.kafka.group_id,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.config.kafka.batch_max_events,
            # New tables appear as new topics; find them within seconds, not the default 5 minutes.
            metadata_max_age_ms=5000,
            fetch_max_wait_ms=200,
            # Catch-up reads several megabytes per fetch, not the 1 MB per partition default; the
            # fetch buffer stays within one batch's bytes.
            fetch_max_bytes=self.config.kafka.batch_max_bytes,
            max_partition_fetch_bytes=min(8 * 1024 * 1024, self.config.kafka.batch_max_bytes),
            # A killed consumer's partitions move to its successor after this long.
            session_timeout_ms=10000,
            heartbeat_interval_ms=3000,
        )

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
        self._restore_parked()
        gcpolicy.tune_for_batches()
        consumer = self._consumer()
        consumer.subscribe(
            pattern=subscription_pattern(self.sources, self.assemblers),
            listener=_SeekToWarehouse(consumer, self.engine),
        )
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        previous = {sig: signal.signal(sig, self.request_stop) for sig in signals}
        last_data = time.monotonic()
        last_report = 0.0
        try:
            while not self._stop:
                polled_at = time.time_ns()
                records = self._poll_batch(consumer)
                now = time.monotonic()
                if records:
                    last_data = now
                if records or self._parked() or self._restored_held:
                    with self.instrumentation.batch(records, polled_at) as watch:
                        batch = self._apply(records, idle_s=now - last_data)
                        if batch is not None:
                            watch.applied(batch)
                    if batch is not None:
                        self._account(result, batch)
                        if on_batch is not None:
                            on_batch(batch)
                    try:
                        consumer.commit()
                    except Exception as exc:  # courtesy commit only; the warehouse holds the truth
                        log.debug("kafka commit failed: %s", exc)
                self.instrumentation.sample(consumer)
                if now - last_report > 2 and result.batches:
                    last_report = now
                    self.progress(
                        f"run: {result.events} events applied in {result.batches} batches"
                    )
                if max_seconds is not None and now - started > max_seconds:
                    result.stopped_by = "max-seconds"
                    break
                if (
                    until_idle is not None
                    and not records
                    and now - last_data >= until_idle
                    and self._caught_up(consumer)
                ):
                    result.stopped_by = "idle"
                    break
            else:
                result.stopped_by = "signal"
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            consumer.close(autocommit=False)
        result.elapsed_s = time.monotonic() - started
        return result

    def _poll_batch(self, consumer: KafkaConsumer) -> list[Any]:
        """Poll until the batch is full or the batch wait has passed since its first record."""
        limit = self.config.kafka.batch_max_events
        max_bytes = self.config.kafka.batch_max_bytes
        wait_s = self.config.kafka.batch_max_wait_ms / 1000
        records: list[Any] = []
        size = 0
        first_at: float | None = None
        while len(records) < limit and size < max_bytes:
            timeout = 500
            if first_at is not None:
                timeout = max(0, int((first_at + wait_s - time.monotonic()) * 1000))
            polled = consumer.poll(timeout_ms=timeout, max_records=limit - len(records))
            for partition_records in polled.values():
                records.extend(partition_records)
                # The raw bytes a batch holds bound its memory (records stay until it commits).
                size += sum(len(r.value or b"") + len(r.key or b"") for r in partition_records)
            if records and first_at is None:
                first_at = time.monotonic()
            if first_at is None or time.monotonic() - first_at >= wait_s or not polled:
                break
        return records

    def _caught_up(self, consumer: KafkaConsumer) -> bool:
        """Every data topic assigned, and every assigned partition read to its end.

        A topic Debezium created since the last rebalance (a table whose snapshot just started) is
        not assigned yet: that is not caught up, whatever the assigned partitions say.
        """
        pattern = re.compile(data_topic_pattern(self.sources))
        existing = {t for t in consumer.topics() if pattern.match(t)}
        assignment = consumer.assignment()
        if existing - {tp.topic for tp in assignment}:
            return False
        if self._parked() or self._restored_held:
            return False  # a transaction is still incomplete, or held changes wait for a retry
        if not assignment:
            return True
        ends = consumer.end_offsets(list(assignment))
        return all(consumer.position(tp) >= ends.get(tp, 0) for tp in assignment)

    def _parked(self) -> int:
        return sum(a.parked_events for a in self.assemblers.values())

    def _restore_parked(self) -> None:
        """Reload the records a previous run parked or held (its offsets already point past them)."""
        for record, reason in self.engine.parked_records():
            source = self.sources.get(source_of(record.stream))
            if source is None:
                continue  # the source left the config: its records stay stored
            if reason == HELD_FOR_SCHEMA:
                # Retried in the first batch: the operator may have fixed the warehouse column.
                event = self.decoders[source.name].decode(
                    record.key, record.value, record.coordinates
                )
                if event is not None:
                    self._restored_held.append((event, source, record))
                    self._held_stored.add(_address(record))
                continue
            if source.name in self.assemblers:
                self._route(source, record, None, restored=True)

    def _route(
        self,
        source: SourceConfig,
        record: StreamRecord,
        batch: _Batch | None,
        *,
        restored: bool = False,
    ) -> None:
        """Decode one record and hand it to its transaction assembler or straight to the batch."""
        assembler = self.assemblers.get(source.name)
        if is_transaction_topic(record.stream):
            boundary = (
                decode_boundary(record, SourceKind(source.kind)) if assembler is not None else None
            )
            if boundary is not None and assembler is not None:
                assembler.add_boundary(boundary, record, restored=restored)
            return
        # A DecodeError propagates: nothing of this batch is committed, so nothing is lost.
        event = self.decoders[source.name].decode(record.key, record.value, record.coordinates)
        if event is None:
            return
        if assembler is not None and assembler.add_event(event, record, restored=restored):
            return
        if batch is not None:
            batch.add(event, source, record)

    def _apply(self, records: list[Any], idle_s: float = 0.0) -> BatchResult | None:
        batch = _Batch()
        retried = [(event.table, record) for event, _, record in self._restored_held]
        for event, source, record in self._restored_held:
            batch.add(event, source, record)
        self._restored_held = []
        next_offsets: dict[TopicPartition, int] = {}
        with self.instrumentation.decode(len(records)):
            for record in records:
                next_offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
                source = self.sources.get(source_of(record.topic))
                if source is not None:
                    self._route(source, raw_record(record), batch)
        parked = ParkedChanges()
        for name, assembler in self.assemblers.items():
            for event, record in assembler.release(idle_s):
                batch.add(event, self.sources[name], record)
            delta = assembler.take_delta()
            parked.added.extend(delta.added)
            parked.removed.extend(delta.removed)
        for table in [t for t in batch.events if t in self.blocked]:
            self._hold(batch, table, parked)
        if not (next_offsets or batch.events or parked.added or parked.removed or parked.held):
            return None
        checkpoints = [Checkpoint(tp.topic, tp.partition, off) for tp, off in next_offsets.items()]
        removed = list(parked.removed)
        while True:
            # Retried held records of tables that are not stopped leave the store with this batch.
            parked.removed = removed + [r for t, r in retried if t not in self.blocked]
            try:
                result = self.engine.apply(batch.events, batch.infos, checkpoints, parked)
            except SchemaChangeError as exc:
                table = exc.table_id
                if not isinstance(table, TableId) or table not in batch.events:
                    raise
                self.blocked[table] = str(exc)
                log.error("%s (table %s stopped; its changes are held)", exc, table)
                self.progress(f"run: table {table} stopped: {exc}")
                self._hold(batch, table, parked)
                continue
            for table, record in retried:
                if table not in self.blocked:
                    self._held_stored.discard(_address(record))
            return result

    def _hold(self, batch: _Batch, table: TableId, parked: ParkedChanges) -> None:
        """Move a stopped table's events out of the batch into the warehouse's held records."""
        batch.events.pop(table, None)
        batch.infos.pop(table, None)
        for record in batch.records.pop(table, []):
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
