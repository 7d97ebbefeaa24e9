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

from cdc_consumers.envelope import EnvelopeDecoder
from cdc_consumers.model import ChangeEvent, KafkaCoordinates, SourceKind, TableId
from cdc_consumers.topics import data_topic_pattern, source_of
from cdchub.config import HubConfig
from merge.naming import default_namespace
from merge.scd2 import BatchResult, Checkpoint, Scd2Engine, TableInfo
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
        self.client_id = client_id
        self._stop = False

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
    ) -> RunResult:
        """Consume and apply until stopped, or until caught up and idle for `until_idle` seconds.

        With `handle_signals` (main thread only), SIGTERM/SIGINT finish the batch in hand and return.
        """
        result = RunResult()
        started = time.monotonic()
        self._stop = False
        self.engine.ensure_control()
        consumer = self._consumer()
        consumer.subscribe(
            pattern=data_topic_pattern(self.sources),
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
                    with self.instrumentation.batch(records, polled_at) as watch:
                        batch = self._apply(records)
                        watch.applied(batch)
                    self._account(result, batch)
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
        wait_s = self.config.kafka.batch_max_wait_ms / 1000
        records: list[Any] = []
        first_at: float | None = None
        while len(records) < limit:
            timeout = 500
            if first_at is not None:
                timeout = max(0, int((first_at + wait_s - time.monotonic()) * 1000))
            polled = consumer.poll(timeout_ms=timeout, max_records=limit - len(records))
            for partition_records in polled.values():
                records.extend(partition_records)
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
        if not assignment:
            return True
        ends = consumer.end_offsets(list(assignment))
        return all(consumer.position(tp) >= ends.get(tp, 0) for tp in assignment)

    def _apply(self, records: list[Any]) -> BatchResult:
        events: dict[TableId, list[ChangeEvent]] = {}
        infos: dict[TableId, TableInfo] = {}
        next_offsets: dict[TopicPartition, int] = {}
        with self.instrumentation.decode(len(records)):
            self._decode(records, events, infos, next_offsets)
        checkpoints = [Checkpoint(tp.topic, tp.partition, off) for tp, off in next_offsets.items()]
        return self.engine.apply(events, infos, checkpoints)

    def _decode(
        self,
        records: list[Any],
        events: dict[TableId, list[ChangeEvent]],
        infos: dict[TableId, TableInfo],
        next_offsets: dict[TopicPartition, int],
    ) -> None:
        for record in records:
            coords = KafkaCoordinates(
                record.topic, record.partition, record.offset, record.timestamp
            )
            next_offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
            source = self.sources.get(source_of(record.topic))
            if source is None:
                continue
            # A DecodeError propagates: nothing of this batch is committed, so nothing is lost.
            event = self.decoders[source.name].decode(record.key, record.value, coords)
            if event is None:
                continue
            events.setdefault(event.table, []).append(event)
            if event.table not in infos:
                infos[event.table] = TableInfo(
                    source.kind, source.database, default_namespace(source.kind, source.database)
                )

    @staticmethod
    def _account(result: RunResult, batch: BatchResult) -> None:
        result.batches += 1
        result.events += batch.events
        result.versions += batch.versions
        for table in batch.tables:
            name = str(table.table)
            result.per_table[name] = result.per_table.get(name, 0) + table.events
            result.lags_ms.extend(table.lags_ms)
