"""Transaction-consistent delivery: hold a source's changes until their whole transaction has arrived.

Debezium (`provide.transaction.metadata=true`) writes a BEGIN and an END record per source transaction to
`<prefix>.transaction`; END carries the number of data events the transaction produced, and each data
event carries `transaction.id`. The events of one transaction are spread over one topic per table, which
a consumer reads in no guaranteed relative order, so a batch cut at an arbitrary record would show an
order without its order lines. The assembler parks each event until its transaction's END has arrived
and the event count is reached, then releases whole transactions in commit order (END order).

Parked records are kept raw (the Kafka record bytes) so the caller can persist them in the warehouse in
the same transaction as the offsets: a restart reloads them instead of re-reading Kafka, and the stored
offsets can always move to the end of what was consumed.

Limits (documented in docs/transactions.md): a transaction larger than the buffer, or still incomplete
after the consumer has been idle for the timeout, is released non-atomically with a warning; one consumer must read all of a
source's topics (the default single `cdchub run`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from cdc_consumers import jsonfast
from cdc_consumers.envelope import transaction_key
from core.errors import DecodeError
from core.model import ChangeEvent, SourceKind, StreamRecord

log = logging.getLogger(__name__)

TRANSACTION_TOPIC_SUFFIX = ".transaction"
# Transaction ids already released, remembered so a late straggler passes straight through.
_FINISHED_MEMORY = 100_000


@dataclass(frozen=True)
class TxBoundary:
    """A BEGIN or END record of one source transaction."""

    status: str
    tx_id: str
    event_count: int | None


def decode_boundary(record: StreamRecord, kind: SourceKind) -> TxBoundary | None:
    """Decode a transaction-topic record (JSON converter); None for a tombstone.

    Raises:
        DecodeError: the record is not a Debezium transaction record; carries topic/partition/offset.
    """
    if record.value is None:
        return None
    try:
        doc = jsonfast.loads(record.value)
        payload = doc["payload"] if isinstance(doc, dict) and "payload" in doc else doc
        count = payload.get("event_count")
        return TxBoundary(
            str(payload["status"]),
            transaction_key(kind, str(payload["id"])),
            int(count) if count is not None else None,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise DecodeError(
            f"cannot decode Debezium transaction record: {exc}",
            topic=record.stream,
            partition=record.partition,
            offset=record.offset,
        ) from exc


@dataclass
class _Transaction:
    tx_id: str
    first_seen: float
    events: list[tuple[ChangeEvent, StreamRecord]] = field(default_factory=list)
    end: StreamRecord | None = None
    expected: int | None = None

    @property
    def complete(self) -> bool:
        return self.expected is not None and len(self.events) >= self.expected


@dataclass
class ParkedDelta:
    """Changes to the parked-record store since the last call: to persist with the batch."""

    added: list[StreamRecord] = field(default_factory=list)
    removed: list[StreamRecord] = field(default_factory=list)


@dataclass
class ReleaseStats:
    """Counters for logs and metrics."""

    released_transactions: int = 0
    forced_transactions: int = 0


class TransactionAssembler:
    """Parks one source's streamed events until their transaction is complete."""

    def __init__(self, source: str, max_events: int, timeout_s: float) -> None:
        self.source = source
        self.max_events = max_events
        self.timeout_s = timeout_s
        self._open: dict[str, _Transaction] = {}
        # END order = commit order; transactions wait here until complete, then leave from the front.
        self._ended: OrderedDict[str, _Transaction] = OrderedDict()
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._parked_events = 0
        self._delta = ParkedDelta()
        self.stats = ReleaseStats()

    @property
    def parked_events(self) -> int:
        """Events held back right now."""
        return self._parked_events

    def add_event(self, event: ChangeEvent, raw: StreamRecord, *, restored: bool = False) -> bool:
        """Park a streamed event of a transaction; False when it needs no parking (apply it now)."""
        if event.snapshot or event.tx_id is None or event.tx_id in self._finished:
            return False
        tx = self._open.get(event.tx_id) or self._ended.get(event.tx_id)
        if tx is None:
            tx = self._open[event.tx_id] = _Transaction(event.tx_id, time.monotonic())
        tx.events.append((event, raw))
        self._parked_events += 1
        if not restored:
            self._delta.added.append(raw)
        return True

    def add_boundary(
        self, boundary: TxBoundary, raw: StreamRecord, *, restored: bool = False
    ) -> None:
        """Record a BEGIN (ignored) or END (sets the expected event count) of a transaction."""
        if boundary.status != "END" or boundary.tx_id in self._finished:
            return
        tx = self._open.pop(boundary.tx_id, None) or _Transaction(boundary.tx_id, time.monotonic())
        tx.end = raw
        tx.expected = boundary.event_count or 0
        self._ended[boundary.tx_id] = tx
        if not restored:
            self._delta.added.append(raw)

    def release(self, idle_s: float = 0.0) -> list[tuple[ChangeEvent, StreamRecord]]:
        """Events of every transaction that is complete, in commit order, whole.

        A transaction blocks the ones that ended after it (so the warehouse never shows a later state
        without an earlier one). It is released incomplete, with a warning, only when stalling would
        be worse: the consumer has read everything and been idle for `timeout_s` (`idle_s` says how
        long) so its missing events are not in flight, or the buffer overflows. Wall-clock age alone
        proves nothing: a consumer catching up on a backlog reads one table's topic far ahead of another.
        """
        out: list[tuple[ChangeEvent, StreamRecord]] = []
        stalled = idle_s >= self.timeout_s
        while self._ended:
            tx = next(iter(self._ended.values()))
            if not tx.complete:
                if not (stalled or self._parked_events > self.max_events):
                    break
                self._warn_forced(tx, "stalled" if stalled else "buffer full")
            self._ended.popitem(last=False)
            out.extend(self._finish(tx))
        while self._open and (stalled or self._parked_events > self.max_events):
            # No END in sight: a transaction larger than the buffer, or one whose END never came.
            oldest = min(self._open.values(), key=lambda t: t.first_seen)
            self._warn_forced(
                oldest, "stalled" if stalled else "larger than the transaction buffer"
            )
            del self._open[oldest.tx_id]
            out.extend(self._finish(oldest))
        return out

    def take_delta(self) -> ParkedDelta:
        """The parked-store changes since the last call (and reset)."""
        delta, self._delta = self._delta, ParkedDelta()
        return delta

    def _finish(self, tx: _Transaction) -> list[tuple[ChangeEvent, StreamRecord]]:
        self._parked_events -= len(tx.events)
        self._delta.removed.extend(raw for _, raw in tx.events)
        if tx.end is not None:
            self._delta.removed.append(tx.end)
        self._finished[tx.tx_id] = None
        while len(self._finished) > _FINISHED_MEMORY:
            self._finished.popitem(last=False)
        self.stats.released_transactions += 1
        return list(tx.events)

    def _warn_forced(self, tx: _Transaction, why: str) -> None:
        self.stats.forced_transactions += 1
        log.warning(
            "source %s: transaction %s %s (%d of %s events arrived); applying it without "
            "transaction consistency",
            self.source,
            tx.tx_id,
            why,
            len(tx.events),
            tx.expected if tx.expected is not None else "?",
        )


def is_transaction_topic(topic: str) -> bool:
    """True for a `<prefix>.transaction` topic."""
    return topic.endswith(TRANSACTION_TOPIC_SUFFIX) and topic.count(".") == 1


def raw_record(record: Any) -> StreamRecord:
    """A kafka-python ConsumerRecord as a StreamRecord."""
    return StreamRecord(
        record.topic, record.partition, record.offset, record.timestamp, record.key, record.value
    )
