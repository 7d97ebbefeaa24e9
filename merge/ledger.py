"""The batch's ledger: consumer state and the batch log, written in the batch's one transaction.

Stream checkpoints (`_cdchub.kafka_offsets`), the offsets each batch ended at (`batch_offsets`), held
records of stopped tables (`parked_records`), dead letters, forced releases and one `batches` row per
table with its lag distribution. `Scd2Engine` calls these inside the transaction that merges the data,
so offsets and data commit together: that is the exactly-once guarantee.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.model import ChangeEvent, StreamRecord, TableId
from core.results import TableResult
from merge import control, dead_letters
from merge.dead_letters import DeadLetter
from merge.session import WarehouseSession
from merge.sqltree import insert_rows
from observability.lagmath import distribution


@dataclass(frozen=True)
class Checkpoint:
    """The next position to read from one stream partition (a Kafka topic partition)."""

    stream: str
    partition: int
    next_offset: int


# Why a record sits in `_cdchub.parked_records`. Only records of a table stopped by an incompatible
# schema change are stored ("held"); "transaction" rows were written by versions that parked incomplete
# transactions in the warehouse and are migrated back to Kafka offsets (`migrate_transaction_parking`).
PARKED_FOR_TRANSACTION = "transaction"
HELD_FOR_SCHEMA = "held"


@dataclass(frozen=True)
class ForcedReleaseRow:
    """A transaction applied without transaction consistency (`_cdchub.forced_releases`)."""

    source: str
    tx_id: str
    arrived: int
    expected: int | None
    reason: str


@dataclass
class ParkedChanges:
    """Consumer state written in the batch's transaction with the checkpoints.

    `held` belong to a stopped table (an incompatible schema change, or a dead letter under the
    `halt` policy) and wait for the operator; `removed` are held records that this batch applied;
    `forced` are transactions released incomplete, recorded for `cdchub lag` and the dashboard;
    `dead` are new dead letters (`merge.dead_letters`), `resolved` the ids of retried ones applied.
    """

    held: list[StreamRecord] = field(default_factory=list)
    removed: list[StreamRecord] = field(default_factory=list)
    forced: list[ForcedReleaseRow] = field(default_factory=list)
    # Dead letters to store, and letters whose retried event this batch applied.
    dead: list[DeadLetter] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


def _columns(columns: tuple[tuple[str, str], ...]) -> list[str]:
    return [c for c, _ in columns]


def _bytes(value: Any) -> bytes | None:
    """A binary column value as bytes (drivers return bytes, bytearray or memoryview)."""
    return None if value is None else bytes(value)


class Ledger:
    """Reads and writes one consumer group's rows of the control tables (created by the engine)."""

    def __init__(self, session: WarehouseSession, consumer_group: str) -> None:
        self.session = session
        self.consumer_group = consumer_group

    def stored_checkpoints(self) -> dict[tuple[str, int], int]:
        """Next offsets stored by earlier batches of this consumer group."""
        rows = self.session.query(control.select_offsets(self.consumer_group))
        return {(topic, int(partition)): int(offset) for topic, partition, offset in rows}

    def store_checkpoints(self, checkpoints: Iterable[Checkpoint]) -> None:
        """Replace the stored next offsets of the checkpoints' partitions (in the open transaction)."""
        by_stream: dict[str, list[Checkpoint]] = {}
        for cp in checkpoints:
            by_stream.setdefault(cp.stream, []).append(cp)
        now = dt.datetime.now(dt.UTC)
        insert = insert_rows(
            control.control_table(control.OFFSETS), _columns(control.OFFSETS_COLUMNS)
        )
        for stream, cps in by_stream.items():
            self.session.execute(
                control.delete_offsets(self.consumer_group, stream, [c.partition for c in cps])
            )
            self.session.executemany(
                insert,
                [(self.consumer_group, stream, c.partition, c.next_offset, now) for c in cps],
            )

    def log_offsets(
        self, batch_id: str, checkpoints: list[Checkpoint], committed_at: dt.datetime
    ) -> None:
        """The Kafka offsets a batch ends at, next to its lag rows (`_cdchub.batch_offsets`)."""
        rows = [
            (batch_id, self.consumer_group, c.stream, c.partition, c.next_offset, committed_at)
            for c in checkpoints
        ]
        columns = _columns(control.BATCH_OFFSETS_COLUMNS)
        self.session.executemany(
            insert_rows(control.control_table(control.BATCH_OFFSETS), columns), rows
        )

    def parked_records(self) -> list[tuple[StreamRecord, str]]:
        """Records stored by earlier batches of this consumer group, with why, in stream order."""
        rows = self.session.query(control.select_parked(self.consumer_group))
        return [
            (StreamRecord(t, int(p), int(o), int(ts), _bytes(k), _bytes(v)), reason)
            for t, p, o, ts, k, v, reason in rows
        ]

    def migrate_transaction_parking(self) -> int:
        """Give records parked in the warehouse by an older version back to Kafka.

        Older versions stored incomplete transactions' records in `_cdchub.parked_records` and moved
        the offsets past them. Kafka is the buffer now: the stored offset of each such partition is
        rewound to its earliest parked record (the re-read is idempotent) and the rows are dropped,
        in one transaction. Returns the number of records migrated.
        """
        parked = [r for r, reason in self.parked_records() if reason == PARKED_FOR_TRANSACTION]
        if not parked:
            return 0
        earliest: dict[tuple[str, int], int] = {}
        for r in parked:
            key = (r.stream, r.partition)
            earliest[key] = min(earliest.get(key, r.offset), r.offset)
        stored = self.stored_checkpoints()
        rewound = [
            Checkpoint(topic, partition, min(offset, stored.get((topic, partition), offset)))
            for (topic, partition), offset in earliest.items()
        ]
        with self.session.transaction():
            self.store_checkpoints(rewound)
            self.session.execute(
                control.delete_parked_reason(self.consumer_group, PARKED_FOR_TRANSACTION)
            )
        return len(parked)

    def store_parked(self, parked: ParkedChanges) -> None:
        """Write the batch's consumer state: held, released, dead-lettered and forced records."""
        removed: dict[tuple[str, int], list[int]] = {}
        for r in parked.removed:
            removed.setdefault((r.stream, r.partition), []).append(r.offset)
        for (stream, partition), offsets in removed.items():
            self.session.execute(
                control.delete_parked(self.consumer_group, stream, partition, offsets)
            )
        now = dt.datetime.now(dt.UTC)
        if parked.held:
            self.session.executemany(
                insert_rows(
                    control.control_table(control.PARKED), _columns(control.PARKED_COLUMNS)
                ),
                [
                    (
                        self.consumer_group,
                        r.stream,
                        r.partition,
                        r.offset,
                        r.timestamp,
                        r.key,
                        r.value,
                        now,
                        HELD_FOR_SCHEMA,
                    )
                    for r in parked.held
                ],
            )
        if parked.dead:
            dead_letters.store(self.session, parked.dead)
        if parked.resolved:
            dead_letters.set_status(
                self.session, self.consumer_group, parked.resolved, dead_letters.APPLIED
            )
        if parked.forced:
            self.session.executemany(
                insert_rows(
                    control.control_table(control.FORCED), _columns(control.FORCED_COLUMNS)
                ),
                [
                    (self.consumer_group, f.source, f.tx_id, f.arrived, f.expected, f.reason, now)
                    for f in parked.forced
                ],
            )

    def log_batch(
        self,
        batch_id: str,
        results: list[TableResult],
        events_by_table: dict[TableId, list[ChangeEvent]],
        committed_at: dt.datetime,
    ) -> None:
        """One `_cdchub.batches` row per table: counts, lag distribution, commit-time range."""
        rows = []
        for result in results:
            events = events_by_table[result.table]
            lags = distribution(result.lags_ms)
            stats = list(lags.values()) if lags else [None] * 5
            rows.append(
                (
                    batch_id,
                    result.table.source,
                    f"{result.table.namespace}.{result.table.table}",
                    result.events,
                    result.versions,
                    *stats,
                    min(e.commit_time for e in events),
                    max(e.commit_time for e in events),
                    committed_at,
                )
            )
        if rows:
            columns = _columns(control.BATCHES_COLUMNS)
            self.session.executemany(
                insert_rows(control.control_table(control.BATCHES), columns), rows
            )
