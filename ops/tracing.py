"""Spans and metrics around the runner's stages: one trace per applied batch.

Span tree of one batch (names follow the OTel messaging and database semantic conventions):

    process batch                      CONSUMER  messaging.* + cdchub.lag.* + transaction ids
    ├── receive                        CLIENT    the poll that filled the batch
    │   └── receive <topic>            CLIENT    one per topic partition: partition id, offsets
    ├── decode                         INTERNAL  envelopes → ChangeEvents
    ├── MERGE <schema>.<table>_history CLIENT    one per table: db.system.name, db.collection.name
    └── COMMIT                         CLIENT    the warehouse transaction (data + offsets)
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from connectors.kafka_probe import KafkaProbe
from connectors.warehouses import dialect_for
from connectors.warehouses.nesting import NestedTransaction
from core.config import HubConfig
from core.model import ChangeEvent, TableId
from core.results import BatchResult
from merge.session import WarehouseSession
from observability.instrumentation import BatchTimes, BatchWatch, HistoryName, NoInstrumentation, S
from observability.lagmath import current_lag, distribution
from observability.metrics import HubMetrics
from observability.telemetry import Telemetry

log = logging.getLogger(__name__)
MAX_TX_IDS = 1000  # attribute size stays bounded; the batch id leads to the rest in the warehouse


def table_label(table: TableId) -> str:
    """The `table` attribute of metrics: `namespace.table`, as in `_cdchub.batches.table_name`."""
    return f"{table.namespace}.{table.table}"


class _TracedSession:
    """A WarehouseSession whose outermost transaction commit is a `COMMIT` span."""

    def __init__(self, session: WarehouseSession, owner: RunInstrumentation) -> None:
        self._session = session
        self._owner = owner
        self._nesting = NestedTransaction()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def transaction(self) -> AbstractContextManager[None]:
        """The session's transaction; inner blocks join it, the outermost commit is traced."""
        return self._nesting.block(self._traced)

    @contextmanager
    def _traced(self) -> Iterator[None]:
        with ExitStack() as stack:
            stack.enter_context(self._session.transaction())
            yield  # an error here exits the session's block, which rolls back
            with self._owner.tracer.start_as_current_span(
                "COMMIT", kind=SpanKind.CLIENT, attributes=self._owner.db_attributes("COMMIT")
            ):
                stack.close()  # the session's block commits


class _Batch(BatchWatch):
    """One batch in flight: its span, its records and the events each table merged."""

    def __init__(
        self, owner: RunInstrumentation, span: trace.Span, records: Sequence[Any], started: int
    ) -> None:
        self.owner = owner
        self.span = span
        self.records = records
        self.started = started
        self.events: dict[TableId, Sequence[ChangeEvent]] = {}

    def applied(self, batch: BatchResult) -> None:
        """Record the batch's lags, ops and transaction ids on its span and in the metrics."""
        owner, metrics = self.owner, self.owner.metrics
        lags: list[float] = []
        tx_ids: set[str] = set()
        skewed = 0
        for result in batch.tables:
            attrs = {"source": result.table.source, "table": table_label(result.table)}
            for lag_ms in result.lags_ms:
                metrics.replication_lag.record(lag_ms / 1000, attrs)
            lags.extend(result.lags_ms)
            events = self.events.get(result.table, ())
            for op, count in Counter(e.op.value for e in events).items():
                metrics.events_applied.add(count, {**attrs, "op": op})
            tx_ids.update(e.tx_id for e in events if e.tx_id)
            raw = [
                (batch.committed_at - e.commit_time).total_seconds() * 1000
                for e in events
                if not e.snapshot
            ]
            negative = sum(1 for r in raw if r < -owner.skew_tolerance_ms)
            if negative:
                skewed += negative
                metrics.negative_lag.add(negative, attrs)
                log.warning(
                    "clock skew: %d events of %s committed up to %.0f ms after the warehouse "
                    "commit; their lag is reported as 0",
                    negative,
                    result.table,
                    -min(raw),
                )
            if events:
                commit = max(e.commit_time for e in events).timestamp()
                owner.last_commit[result.table] = max(
                    owner.last_commit.get(result.table, 0), commit
                )
        for record in self.records:
            if record.timestamp is not None:
                owner.last_record_ts[(record.topic, record.partition)] = record.timestamp / 1000
        attributes: dict[str, Any] = {
            "cdchub.batch.id": batch.batch_id,
            "cdchub.batch.events": batch.events,
            "cdchub.batch.versions": batch.versions,
            "cdchub.lag.events": len(lags),
            "cdchub.clock_skew.events": skewed,
            "cdchub.source.transaction_ids": sorted(tx_ids)[:MAX_TX_IDS],
            "cdchub.source.transaction_ids.truncated": len(tx_ids) > MAX_TX_IDS,
        }
        stats = distribution(lags)
        if stats:
            attributes.update({f"cdchub.lag.{k}_ms": v for k, v in stats.items()})
        self.span.set_attributes(attributes)
        metrics.batch_duration.record((time.time_ns() - self.started) / 1e9)


class RunInstrumentation(NoInstrumentation):
    """Traces and metrics for one `Runner`."""

    def __init__(
        self,
        telemetry: Telemetry,
        config: HubConfig,
        *,
        clock: Any = time.time,
        probe: KafkaProbe | None = None,
    ) -> None:
        """`probe` answers heartbeat questions (default: a KafkaProbe built at the first sample)."""
        self.telemetry = telemetry
        self.tracer = telemetry.tracer
        self.metrics = HubMetrics(telemetry.meter)
        self.config = config
        self.group = config.kafka.group_id
        self.sources = [s.name for s in config.sources]
        self.skew_tolerance_ms = config.observability.skew_tolerance_ms
        self.clock = clock
        self.last_commit: dict[TableId, float] = {}
        self.last_record_ts: dict[tuple[str, int], float] = {}
        self._batch: _Batch | None = None
        self._next_sample = 0.0
        self._probe: KafkaProbe | None = probe

    def db_attributes(self, operation: str, collection: str | None = None) -> dict[str, Any]:
        """Database client span attributes (OTel semantic conventions)."""
        attrs: dict[str, Any] = {
            "db.system.name": dialect_for(self.config.warehouse.kind).OTEL_DB_SYSTEM,
            "db.namespace": self.config.warehouse.location,
            "db.operation.name": operation,
        }
        if collection:
            attrs["db.collection.name"] = collection
        return attrs

    def _messaging(self, operation: str) -> dict[str, Any]:
        return {
            "messaging.system": "kafka",
            "messaging.consumer.group.name": self.group,
            "messaging.operation.type": operation,
            "messaging.operation.name": operation,
        }

    def wrap_session(self, session: S) -> S:
        """The session, with its commits traced."""
        return cast(S, _TracedSession(cast(WarehouseSession, session), self))

    @contextmanager
    def batch(self, records: Sequence[Any], times: BatchTimes) -> Iterator[BatchWatch]:
        """The root span of one batch, with the poll that filled it and its decoding as children."""
        polled_at_ns, polled = times.polled_at_ns, times.received_ns
        span = self.tracer.start_span(
            "process batch",
            kind=SpanKind.CONSUMER,
            start_time=polled_at_ns,
            attributes={
                **self._messaging("process"),
                "messaging.batch.message_count": len(records),
            },
        )
        context = trace.set_span_in_context(span)
        receive = self.tracer.start_span(
            "receive",
            context=context,
            kind=SpanKind.CLIENT,
            start_time=polled_at_ns,
            attributes={
                **self._messaging("receive"),
                "messaging.batch.message_count": len(records),
            },
        )
        partitions: dict[tuple[str, int], list[int]] = {}
        for record in records:
            partitions.setdefault((record.topic, record.partition), []).append(record.offset)
        for (topic, partition), offsets in sorted(partitions.items()):
            self.tracer.start_span(
                f"receive {topic}",
                context=trace.set_span_in_context(receive),
                kind=SpanKind.CLIENT,
                start_time=polled_at_ns,
                attributes={
                    **self._messaging("receive"),
                    "messaging.destination.name": topic,
                    "messaging.destination.partition.id": str(partition),
                    "messaging.kafka.offset": min(offsets),
                    "cdchub.kafka.offset.last": max(offsets),
                    "messaging.batch.message_count": len(offsets),
                },
            ).end(end_time=polled)
        receive.end(end_time=polled)
        # Records are decoded as each poll returns them, so decoding shares the receive window;
        # the span ends with it and carries the time actually spent decoding.
        self.tracer.start_span(
            "decode",
            context=context,
            start_time=polled_at_ns,
            attributes={
                "messaging.batch.message_count": len(records),
                "cdchub.decode.seconds": round(times.decode_s, 6),
            },
        ).end(end_time=max(polled, polled_at_ns + 1))
        self._batch = _Batch(self, span, records, polled_at_ns)
        try:
            with trace.use_span(span, end_on_exit=True):
                yield self._batch
        finally:
            self._batch = None

    @contextmanager
    def merge_table(
        self, table: TableId, names: HistoryName, events: Sequence[ChangeEvent]
    ) -> Iterator[object]:
        """One table's merge as a database client span."""
        if self._batch is not None:
            self._batch.events[table] = events
        collection = f"{names.schema}.{names.history}"
        ops = Counter(e.op.value for e in events)
        attrs = {
            **self.db_attributes("MERGE", collection),
            "cdchub.source.table": str(table),
            "cdchub.events": len(events),
            **{f"cdchub.events.{op}": n for op, n in sorted(ops.items())},
        }
        with self.tracer.start_as_current_span(
            f"MERGE {collection}", kind=SpanKind.CLIENT, attributes=attrs
        ) as span:
            yield span

    def dead_lettered(self, source: str, table: str, status: str) -> None:
        """Count an event sent to the dead-letter store."""
        self.metrics.dlq_events.add(1, {"source": source, "table": table, "status": status})

    def transactions_forced(self, source: str, reason: str, count: int) -> None:
        """Count transactions applied without transaction consistency."""
        self.metrics.forced_releases.add(count, {"source": source, "reason": reason})

    def sample(self, consumer: Any) -> None:
        """Refresh consumer lag, heartbeat ages and current lag (at most every sample interval)."""
        now = self.clock()
        if now < self._next_sample:
            return
        self._next_sample = now + self.config.observability.sample_interval_s
        try:
            self._sample(consumer, now)
        except Exception as exc:  # metrics must never stop the pipeline
            log.debug("lag sampling failed: %s", exc)

    def _sample(self, consumer: Any, now: float) -> None:
        assignment = list(consumer.assignment())
        ends = consumer.end_offsets(assignment) if assignment else {}
        messages: dict[tuple[str, int], int] = {}
        seconds: dict[tuple[str, int], float] = {}
        for tp in assignment:
            lag = max(0, int(ends.get(tp, 0)) - int(consumer.position(tp)))
            messages[(tp.topic, tp.partition)] = lag
            last = self.last_record_ts.get((tp.topic, tp.partition))
            if lag == 0:
                seconds[(tp.topic, tp.partition)] = 0.0
            elif last is not None:
                seconds[(tp.topic, tp.partition)] = max(0.0, now - last)
        if self._probe is None:
            self._probe = KafkaProbe(self.config.kafka.bootstrap_servers)
        heartbeats = self._probe.heartbeat_times(self.sources)
        current: dict[tuple[str, str], float] = {}
        for table, commit in self.last_commit.items():
            pending = any(n > 0 for (topic, _), n in messages.items() if topic == str(table))
            estimate = current_lag(now, commit, pending, heartbeats.get(table.source))
            if estimate.seconds is None:
                continue
            current[(table.source, table_label(table))] = estimate.seconds
            slo = self.config.observability.slo_for(str(table))
            if slo is not None and estimate.seconds > slo:
                self.metrics.slo_breaches.add(
                    1, {"source": table.source, "table": table_label(table)}
                )
                log.warning(
                    "freshness SLO breached: %s lags %.1f s (SLO %.1f s, %s)",
                    table,
                    estimate.seconds,
                    slo,
                    estimate.basis,
                )
        state = self.metrics.state
        with state.lock:
            state.consumer_lag_messages = messages
            state.consumer_lag_seconds = seconds
            state.heartbeat_age_s = {s: max(0.0, now - t) for s, t in heartbeats.items()}
            state.current_lag_s = current

    def table_stopped(self, table: TableId) -> None:
        """Export 1 for the stopped table until the run ends (the stop is stored in the warehouse)."""
        with self.metrics.state.lock:
            self.metrics.state.tables_stopped[(table.source, table_label(table))] = 1

    def close(self) -> None:
        """Close the heartbeat probe."""
        if self._probe is not None:
            self._probe.close()
            self._probe = None
