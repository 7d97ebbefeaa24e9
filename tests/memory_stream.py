"""An in-memory `ChangeStream` for unit tests: the runner's real loop without a broker.

Topics are append-only lists of `StreamRecord`s with increasing offsets. The same
object can serve several runs (`factory`), like a broker that outlives consumers: records appended
between runs are read by the next run from wherever the warehouse says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from core.model import StreamRecord
from core.stream import ChangeStream, OnAssign, Partition


class MemoryStream:
    """Topics in memory; one consumer at a time; partitions assigned at subscribe."""

    def __init__(self, max_per_poll: int | None = None) -> None:
        self.logs: dict[Partition, list[StreamRecord]] = {}
        self.max_per_poll = max_per_poll
        self.committed: dict[Partition, int] = {}
        # Per commit, whether it was waited for.
        self.commits: list[bool] = []
        self.polls = 0
        # Requests for the cluster's topics (`topics`).
        self.topic_requests = 0
        # Assigned partitions that polls skip (a partition the consumer reads far behind the rest).
        self.slow: set[Partition] = set()
        # Partitions the consumer paused (flow control); `paused_ever` records every pause.
        self.paused: set[Partition] = set()
        self.paused_ever: set[Partition] = set()
        # Addresses read again through `fetch` (records whose raw bytes the runner let go).
        self.fetched: list[tuple[str, int, int]] = []
        self._positions: dict[Partition, int] = {}
        self._pattern: re.Pattern[str] | None = None
        self._on_assign: OnAssign | None = None
        # Hook called before each poll (tests append records "while the consumer runs").
        self.before_poll: Callable[[MemoryStream], None] | None = None

    # -- the producer side --------------------------------------------------------------------

    def append(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int = 0,
        offset: int | None = None,
    ) -> int:
        """Append one record (at `offset` when given and past the end: a gap, as after compaction)."""
        p = Partition(topic, partition)
        log = self.logs.setdefault(p, [])
        end = self._end(p)
        at = end if offset is None or offset < end else offset
        log.append(StreamRecord(topic, partition, at, 0, key, value))
        self._assign_new()
        return at

    def append_record(self, record: Any) -> int:
        """Append a record shaped like kafka-python's ConsumerRecord, keeping its offset if it can."""
        return self.append(record.topic, record.key, record.value, record.partition, record.offset)

    def _end(self, p: Partition) -> int:
        log = self.logs.get(p)
        return log[-1].offset + 1 if log else 0

    def factory(self) -> Callable[[], ChangeStream]:
        """A stream factory for `Runner(stream_factory=...)`: every run gets this stream, fresh."""

        def make() -> ChangeStream:
            self._positions = {}
            self.paused = set()
            self._pattern = None
            return self

        return make

    # -- ChangeStream --------------------------------------------------------------------------

    def subscribe(self, pattern: str, on_assign: OnAssign) -> None:
        self._pattern = re.compile(pattern)
        self._on_assign = on_assign
        self._assign_new()

    def _assign_new(self) -> None:
        if self._pattern is None or self._on_assign is None:
            return
        new = [p for p in self.logs if p not in self._positions and self._pattern.match(p.topic)]
        for p in new:
            self._positions[p] = 0
        if new:
            # Like kafka-python 3.0 after a rebalance: the listener gets the whole assignment, and
            # a partition kept across it keeps its position and its pause.
            self._on_assign(sorted(self._positions))

    def poll(self, max_records: int, timeout_ms: int) -> list[StreamRecord]:
        if self.before_poll is not None:
            self.before_poll(self)
        self.polls += 1
        limit = min(max_records, self.max_per_poll or max_records)
        out: list[StreamRecord] = []
        # Partitions take turns, one record each, as a broker's fetches mix them: no topic is read
        # to its end before the others are touched.
        pending = {
            p: [r for r in self.logs[p] if r.offset >= self._positions[p]]
            for p in sorted(self._positions)
            if p not in self.slow and p not in self.paused
        }
        while len(out) < limit and any(pending.values()):
            for p, queue in pending.items():
                if queue and len(out) < limit:
                    record = queue.pop(0)
                    out.append(record)
                    self._positions[p] = record.offset + 1
        return out

    def seek(self, partition: Partition, offset: int) -> None:
        self._positions[partition] = offset

    def seek_to_beginning(self, partition: Partition) -> None:
        self._positions[partition] = 0

    def assignment(self) -> set[Partition]:
        return set(self._positions)

    def position(self, partition: Partition) -> int:
        return self._positions[partition]

    def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        return {p: self._end(p) for p in partitions}

    def topics(self) -> set[str]:
        self.topic_requests += 1
        return {p.topic for p in self.logs}

    def subscribed_topics(self) -> set[str]:
        pattern = self._pattern
        return {p.topic for p in self.logs if pattern is not None and pattern.match(p.topic)}

    def pause(self, partitions: Iterable[Partition]) -> None:
        self.paused |= set(partitions)
        self.paused_ever |= set(partitions)

    def resume(self, partitions: Iterable[Partition]) -> None:
        self.paused -= set(partitions)

    def fetch(
        self, addresses: list[tuple[str, int, int]]
    ) -> dict[tuple[str, int, int], StreamRecord]:
        self.fetched.extend(addresses)
        wanted = set(addresses)
        return {
            (r.stream, r.partition, r.offset): r
            for p, log in self.logs.items()
            for r in log
            if (r.stream, r.partition, r.offset) in wanted
        }

    def commit(self, offsets: dict[Partition, int], wait: bool = True) -> None:
        self.committed.update(offsets)
        self.commits.append(wait)

    def close(self) -> None:
        self._pattern = None
