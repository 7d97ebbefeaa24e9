"""The dead-letter store (`_cdchub.dead_letters`): events the hub could not apply, kept whole.

A record that cannot be decoded, or whose table's merge fails for a reason that retrying cannot fix
(a key-less table, a value the warehouse cannot hold, a constraint of the warehouse), is stored raw
with the error, its table, key, source position and Kafka coordinates. The table's policy decides what
follows: `halt` (the default: the table stops, its later events are held, the other tables go on) or
`skip` (logged, counted, the table goes on). `cdchub dlq retry` puts a letter back in the run's way:
the merge splices it into its place in history by source position, so a late retry is still exact.

Status: `open` (needs a person; its table is halted), `skipped` (policy skip, or `cdchub dlq skip`),
`retry` (asked for; the run applies it next), `applied` (a retry that succeeded).

With `dead_letters.topic` configured, a letter also names that topic (`copy_topic`) when it is stored,
and `connectors.dead_letter_topic` copies it there after the warehouse committed it, then sets
`copied_at`: the row is the record of truth, the topic a copy (at least once).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from core.model import ColumnType, StreamRecord
from merge import control, ddl, naming, sqltree
from merge.session import WarehouseSession

DEAD = "dead_letters"
OPEN, SKIPPED, RETRY, APPLIED = "open", "skipped", "retry", "applied"

DEAD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("letter_id", "string"),
    ("consumer_group", "string"),
    ("source", "string"),
    ("table_name", "string"),
    ("topic", "string"),
    ("partition", "int32"),
    ("record_offset", "int64"),
    ("record_timestamp", "int64"),
    ("record_key", "bytes"),
    ("record_value", "bytes"),
    ("event_key", "string"),
    ("source_position", "string"),
    ("error_kind", "string"),
    ("error", "string"),
    ("status", "string"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    # The Kafka topic the letter is to be copied to (None: none configured when it was stored).
    ("copy_topic", "string"),
    ("copied_at", "timestamptz"),
)
# Columns a store created by an earlier version lacks (added by `ensure_table`, read as NULL before).
_ADDED = ("copy_topic", "copied_at")
_NAMES = [c for c, _ in DEAD_COLUMNS]


@dataclass(frozen=True)
class DeadLetter:
    """One stored event the hub could not apply."""

    letter_id: str
    consumer_group: str
    source: str
    table_name: str
    topic: str
    partition: int
    record_offset: int
    record_timestamp: int
    record_key: bytes | None
    record_value: bytes | None
    event_key: str
    source_position: str
    error_kind: str
    error: str
    status: str
    created_at: Any
    updated_at: Any
    copy_topic: str | None = None
    copied_at: Any = None

    @property
    def record(self) -> StreamRecord:
        """The Kafka record as it was received."""
        return StreamRecord(
            self.topic,
            self.partition,
            self.record_offset,
            self.record_timestamp,
            self.record_key,
            self.record_value,
        )

    def summary(self) -> dict[str, Any]:
        """The letter without its raw bytes (`cdchub dlq list --json`)."""
        return {
            "id": self.letter_id,
            "source": self.source,
            "table": self.table_name,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.record_offset,
            "key": self.event_key,
            "position": self.source_position,
            "error_kind": self.error_kind,
            "error": self.error,
            "status": self.status,
            "created_at": str(self.created_at),
            "updated_at": str(self.updated_at),
            "copy_topic": self.copy_topic,
            "copied_at": None if self.copied_at is None else str(self.copied_at),
        }


def ensure_table(session: WarehouseSession) -> None:
    """Create the store once (idempotent); add the columns a store of an earlier version lacks."""
    existing = session.table_columns(naming.CONTROL_SCHEMA, DEAD)
    if existing is not None:
        kinds = dict(DEAD_COLUMNS)
        missing = [c for c in _ADDED if c not in existing]
        if missing:
            with session.transaction():
                for name in missing:
                    session.execute(
                        ddl.add_column(
                            control.control_table(DEAD),
                            name,
                            ColumnType(kinds[name]),
                            session.dialect,
                        )
                    )
        return
    with session.transaction():
        session.execute(ddl.create_schema(naming.CONTROL_SCHEMA))
        session.execute(
            ddl.create_table(
                control.control_table(DEAD),
                [(c, ColumnType(k)) for c, k in DEAD_COLUMNS],
                session.dialect,
            )
        )


def new_letter(
    group: str,
    source: str,
    table_name: str,
    record: StreamRecord,
    error_kind: str,
    error: str,
    *,
    event_key: str = "",
    position: str = "",
    status: str = OPEN,
    copy_topic: str | None = None,
) -> DeadLetter:
    """A letter for one record (not stored yet: `store` writes it in the caller's transaction).

    `copy_topic`: the Kafka topic the letter is to be copied to once stored (`dead_letters.topic`).
    """
    now = dt.datetime.now(dt.UTC)
    return DeadLetter(
        uuid.uuid4().hex[:12],
        group,
        source,
        table_name,
        record.stream,
        record.partition,
        record.offset,
        record.timestamp or 0,
        record.key,
        record.value,
        event_key,
        position,
        error_kind,
        error[:4000],
        status,
        now,
        now,
        copy_topic,
    )


def store(session: WarehouseSession, letters: Sequence[DeadLetter]) -> None:
    """Insert letters (inside the caller's transaction)."""
    if letters:
        session.executemany(
            sqltree.insert_rows(control.control_table(DEAD), _NAMES),
            [tuple(getattr(letter, c) for c in _NAMES) for letter in letters],
        )


def _eq(column: str, value: str) -> exp.Expression:
    return exp.EQ(this=sqltree.col(column), expression=exp.Literal.string(value))


def letters(
    session: WarehouseSession,
    group: str,
    *,
    statuses: Sequence[str] = (),
    letter_id: str | None = None,
    table_name: str | None = None,
    to_copy: bool = False,
    limit: int | None = None,
) -> list[DeadLetter]:
    """Stored letters of a consumer group, oldest first, filtered by status, id or table.

    `to_copy`: only letters that name a copy topic and are not copied yet.
    """
    existing = session.table_columns(naming.CONTROL_SCHEMA, DEAD)
    if existing is None:
        return []
    where = [_eq("consumer_group", group)]
    if to_copy:
        if "copy_topic" not in existing:
            return []
        where += _to_copy()
    if statuses:
        where.append(
            exp.In(
                this=sqltree.col("status"), expressions=[exp.Literal.string(s) for s in statuses]
            )
        )
    if letter_id is not None:
        where.append(_eq("letter_id", letter_id))
    if table_name is not None:
        where.append(_eq("table_name", table_name))
    # A store of an earlier version, read before a run added its new columns: NULL for them.
    columns = [sqltree.col(c) if c in existing else exp.Null() for c in _NAMES]
    query = (
        exp.select(*columns)
        .from_(control.control_table(DEAD))
        .where(exp.and_(*where))
        .order_by(sqltree.col("created_at"), sqltree.col("record_offset"))
    )
    if limit is not None:
        query = query.limit(limit)
    out = []
    for row in session.query(query):
        values = list(row)
        for i in (_NAMES.index("record_key"), _NAMES.index("record_value")):
            values[i] = None if values[i] is None else bytes(values[i])
        out.append(DeadLetter(*values))
    return out


def _now_literal() -> exp.Expression:
    return exp.cast(exp.Literal.string(dt.datetime.now(dt.UTC).isoformat()), "TIMESTAMPTZ")


def _update(
    session: WarehouseSession,
    group: str,
    letter_ids: Sequence[str],
    sets: Sequence[exp.Expression],
) -> None:
    """`UPDATE dead_letters SET … WHERE` the group's letters with these ids."""
    if not letter_ids:
        return
    session.execute(
        exp.Update(
            this=control.control_table(DEAD),
            expressions=list(sets),
            where=exp.Where(
                this=exp.and_(
                    _eq("consumer_group", group),
                    exp.In(
                        this=sqltree.col("letter_id"),
                        expressions=[exp.Literal.string(i) for i in letter_ids],
                    ),
                )
            ),
        )
    )


def set_status(
    session: WarehouseSession,
    group: str,
    letter_ids: Sequence[str],
    status: str,
    error: str | None = None,
) -> None:
    """Move letters to `status` (inside the caller's transaction), optionally with a new error."""
    sets = [
        exp.EQ(this=sqltree.col("status"), expression=exp.Literal.string(status)),
        exp.EQ(this=sqltree.col("updated_at"), expression=_now_literal()),
    ]
    if error is not None:
        sets.append(exp.EQ(this=sqltree.col("error"), expression=exp.Literal.string(error[:4000])))
    _update(session, group, letter_ids, sets)


def mark_copied(session: WarehouseSession, group: str, letter_ids: Sequence[str]) -> None:
    """Record that letters were copied to their topic (inside the caller's transaction)."""
    _update(
        session,
        group,
        letter_ids,
        [exp.EQ(this=sqltree.col("copied_at"), expression=_now_literal())],
    )


def uncopied(session: WarehouseSession, group: str) -> dict[str, int]:
    """Letters that name a copy topic but are not copied to it yet, per topic."""
    return _count_by(session, group, "copy_topic", *_to_copy())


def counts(session: WarehouseSession, group: str) -> dict[str, int]:
    """Letters per status."""
    return _count_by(session, group, "status")


def _count_by(
    session: WarehouseSession, group: str, column: str, *conditions: exp.Expression
) -> dict[str, int]:
    """A consumer group's letters counted per value of `column` (one aggregate query)."""
    existing = session.table_columns(naming.CONTROL_SCHEMA, DEAD)
    if existing is None or column not in existing:
        return {}
    query = (
        exp.select(sqltree.col(column), exp.Count(this=exp.Star()))
        .from_(control.control_table(DEAD))
        .where(exp.and_(_eq("consumer_group", group), *conditions))
        .group_by(sqltree.col(column))
    )
    return {str(value): int(n) for value, n in session.query(query)}


def _to_copy() -> list[exp.Expression]:
    """Letters that name a copy topic and are not copied yet."""
    return [
        exp.Not(this=exp.Is(this=sqltree.col("copy_topic"), expression=exp.Null())),
        exp.Is(this=sqltree.col("copied_at"), expression=exp.Null()),
    ]
