"""The hub's metric instruments (names are shared with the Grafana dashboard and docs).

OTel names use dots; the Prometheus exporter turns `cdchub.replication.lag` (unit `s`) into
`cdchub_replication_lag_seconds_{bucket,sum,count}` (see docs/observability.md for the full list).
Gauges read `GaugeState`, which the runner's sampler fills in; the callbacks never call Kafka.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation


@dataclass
class GaugeState:
    """Latest sampled values, keyed by their attribute tuples (thread-safe snapshot)."""

    consumer_lag_messages: dict[tuple[str, int], int] = field(default_factory=dict)
    consumer_lag_seconds: dict[tuple[str, int], float] = field(default_factory=dict)
    heartbeat_age_s: dict[str, float] = field(default_factory=dict)
    current_lag_s: dict[tuple[str, str], float] = field(default_factory=dict)
    # (source, table) -> 1 while the table is stopped by an incompatible column type change.
    tables_stopped: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class HubMetrics:
    """Every instrument of the hub, created once per meter."""

    def __init__(self, meter: Meter) -> None:
        self.state = GaugeState()
        self.replication_lag = meter.create_histogram(
            "cdchub.replication.lag",
            unit="s",
            description="Source commit to warehouse commit, per applied streamed event",
        )
        self.events_applied = meter.create_counter(
            "cdchub.events.applied", unit="{event}", description="Change events applied, by op"
        )
        self.batch_duration = meter.create_histogram(
            "cdchub.batch.duration",
            unit="s",
            description="Poll to warehouse commit of one applied batch",
        )
        self.negative_lag = meter.create_counter(
            "cdchub.replication.lag.negative",
            unit="{event}",
            description="Events whose source commit time is after the warehouse commit (clock skew)",
        )
        self.dlq_events = meter.create_counter(
            "cdchub.dlq.events",
            unit="{event}",
            description="Events sent to the dead-letter store, by source, table and status",
        )
        self.forced_releases = meter.create_counter(
            "cdchub.transactions.forced",
            unit="{transaction}",
            description="Source transactions applied without transaction consistency (stalled or "
            "larger than the buffer), by source and reason",
        )
        self.slo_breaches = meter.create_counter(
            "cdchub.freshness.slo.breaches",
            unit="{sample}",
            description="Samples in which a table's current lag exceeded its freshness SLO",
        )
        # A counter that is never added to is not exported; add 0 so the series exists.
        self.dlq_events.add(0)
        self.forced_releases.add(0)
        meter.create_observable_gauge(
            "cdchub.kafka.consumer.lag",
            callbacks=[self._consumer_lag],
            unit="{message}",
            description="End offset minus consumer position, per topic partition",
        )
        meter.create_observable_gauge(
            "cdchub.kafka.consumer.lag.time",
            callbacks=[self._consumer_lag_time],
            unit="s",
            description="Age of the last applied record of a partition that has unread records",
        )
        meter.create_observable_gauge(
            "cdchub.debezium.heartbeat.age",
            callbacks=[self._heartbeat_age],
            unit="s",
            description="Now minus the timestamp of the source's latest Debezium heartbeat",
        )
        meter.create_observable_gauge(
            "cdchub.replication.lag.current",
            callbacks=[self._current_lag],
            unit="s",
            description="Current lag estimate per table (see docs/observability.md)",
        )

        meter.create_observable_gauge(
            "cdchub.tables.stopped",
            callbacks=[self._tables_stopped],
            unit="{table}",
            description="1 per table stopped by an incompatible column type change (held changes)",
        )

    def _snapshot(self, values: dict[Any, Any]) -> list[tuple[Any, Any]]:
        with self.state.lock:
            return list(values.items())

    def _consumer_lag(self, _options: CallbackOptions) -> Iterable[Observation]:
        for (topic, partition), lag in self._snapshot(self.state.consumer_lag_messages):
            yield Observation(
                lag,
                {
                    "messaging.destination.name": topic,
                    "messaging.destination.partition.id": str(partition),
                },
            )

    def _consumer_lag_time(self, _options: CallbackOptions) -> Iterable[Observation]:
        for (topic, partition), age in self._snapshot(self.state.consumer_lag_seconds):
            yield Observation(
                age,
                {
                    "messaging.destination.name": topic,
                    "messaging.destination.partition.id": str(partition),
                },
            )

    def _heartbeat_age(self, _options: CallbackOptions) -> Iterable[Observation]:
        for source, age in self._snapshot(self.state.heartbeat_age_s):
            yield Observation(age, {"source": source})

    def _current_lag(self, _options: CallbackOptions) -> Iterable[Observation]:
        for (source, table), lag in self._snapshot(self.state.current_lag_s):
            yield Observation(lag, {"source": source, "table": table})

    def _tables_stopped(self, _options: CallbackOptions) -> Iterable[Observation]:
        for (source, table), stopped in self._snapshot(self.state.tables_stopped):
            yield Observation(stopped, {"source": source, "table": table})
