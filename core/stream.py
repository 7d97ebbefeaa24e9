"""The change stream the runner reads: a small seam over the Kafka consumer.

The runner is given a `ChangeStream` (a factory of them, one per run) instead of building a
`KafkaConsumer` itself, so tests drive the real loop through an in-memory stream and the loop never
touches kafka-python types. The production implementation, `KafkaChangeStream`, is an I/O adapter
(`connectors/kafka_stream.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol

from core.model import StreamRecord


class Partition(NamedTuple):
    """One partition of one topic (attribute-compatible with kafka-python's TopicPartition)."""

    topic: str
    partition: int


OnAssign = Callable[[list[Partition]], None]


class ChangeStream(Protocol):
    """What the runner needs of a consumer: subscribe, poll, position, seek, commit."""

    def subscribe(self, pattern: str, on_assign: OnAssign) -> None:
        """Follow every topic matching `pattern`; after every rebalance `on_assign` gets the whole
        assignment (a partition kept across it may keep its position and its pause)."""

    def poll(self, max_records: int, timeout_ms: int) -> list[StreamRecord]:
        """Up to `max_records` records, waiting at most `timeout_ms` for the first."""

    def seek(self, partition: Partition, offset: int) -> None:
        """Read `partition` from `offset` next."""

    def seek_to_beginning(self, partition: Partition) -> None:
        """Read `partition` from its first retained record next."""

    def assignment(self) -> set[Partition]:
        """The partitions this consumer reads now."""

    def position(self, partition: Partition) -> int:
        """The offset of the next record this consumer will read from `partition`."""

    def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """The offset after the last record of each partition."""

    def topics(self) -> set[str]:
        """Every topic the cluster has (asks the cluster)."""

    def subscribed_topics(self) -> set[str]:
        """The topics the subscription matches as the client last saw them (no request: the
        client refreshes its metadata every few seconds)."""

    def pause(self, partitions: Iterable[Partition]) -> None:
        """Stop fetching these partitions (their positions stay) until `resume`."""

    def resume(self, partitions: Iterable[Partition]) -> None:
        """Fetch these paused partitions again."""

    def fetch(
        self, addresses: list[tuple[str, int, int]]
    ) -> dict[tuple[str, int, int], StreamRecord]:
        """Read the records at these (topic, partition, offset) addresses again, whole; an address
        no longer in Kafka is missing from the answer."""

    def commit(self, offsets: dict[Partition, int], wait: bool = True) -> None:
        """Store offsets in Kafka (a courtesy for lag tools: the warehouse holds the truth); with
        `wait` false, send them and return (a later commit overrides a lost one)."""

    def close(self) -> None:
        """Leave the group and release the connection."""
