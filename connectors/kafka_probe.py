"""Read-only Kafka probes: end offsets, a group's committed offsets, Debezium heartbeat times.

A probe is a group-less kafka-python consumer that never subscribes, so it never joins (or
rebalances) the hub's consumer group; `committed()` only reads the group's stored offsets.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from connectors.topics import data_topic_pattern

HEARTBEAT_PREFIX = "__debezium-heartbeat"


@dataclass(frozen=True)
class PartitionLag:
    """How far a consumer group is behind on one partition."""

    topic: str
    partition: int
    end_offset: int
    committed: int | None

    @property
    def messages(self) -> int:
        return max(0, self.end_offset - (self.committed or 0))


class KafkaProbe:
    """A lightweight consumer for lag and heartbeat questions."""

    def __init__(self, bootstrap_servers: str, group_id: str | None = None) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            client_id="cdchub-probe",
            enable_auto_commit=False,
            request_timeout_ms=10000,
        )

    def close(self) -> None:
        """Close the probe's connections."""
        self.consumer.close(autocommit=False)

    def data_partitions(self, sources: Iterable[str]) -> list[TopicPartition]:
        """Every partition of the sources' data topics."""
        pattern = re.compile(data_topic_pattern(sources))
        out = []
        for topic in sorted(t for t in self.consumer.topics() if pattern.match(t)):
            for partition in sorted(self.consumer.partitions_for_topic(topic) or ()):
                out.append(TopicPartition(topic, partition))
        return out

    def group_lag(self, partitions: list[TopicPartition]) -> list[PartitionLag]:
        """End offset vs the group's committed offset, per partition."""
        ends = self.consumer.end_offsets(partitions) if partitions else {}
        out = []
        for tp in partitions:
            committed = self.consumer.committed(tp)
            out.append(PartitionLag(tp.topic, tp.partition, int(ends.get(tp, 0)), committed))
        return out

    def heartbeat_times(self, sources: Iterable[str], timeout_s: float = 2.0) -> dict[str, float]:
        """Unix time (s) of each source's latest heartbeat record; sources without one are absent."""
        topics = self.consumer.topics()
        wanted: dict[TopicPartition, str] = {}
        for source in sources:
            topic = f"{HEARTBEAT_PREFIX}.{source}"
            if topic in topics:
                for partition in self.consumer.partitions_for_topic(topic) or ():
                    wanted[TopicPartition(topic, partition)] = source
        if not wanted:
            return {}
        ends = self.consumer.end_offsets(list(wanted))
        readable = [tp for tp in wanted if ends.get(tp, 0) > 0]
        self.consumer.assign(readable)
        for tp in readable:
            self.consumer.seek(tp, ends[tp] - 1)
        latest: dict[str, float] = {}
        pending = set(readable)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            polled: dict[Any, list[Any]] = self.consumer.poll(timeout_ms=200)
            for tp, records in polled.items():
                for record in records:
                    source = wanted[TopicPartition(tp.topic, tp.partition)]
                    latest[source] = max(latest.get(source, 0.0), record.timestamp / 1000)
                pending.discard(TopicPartition(tp.topic, tp.partition))
        return latest
