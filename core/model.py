"""The unified change model: one typed record per row change, whatever the source database.

Debezium's PostgreSQL and MariaDB/MySQL envelopes differ in their `source` blocks and in how they encode
types; the decoder turns both into `ChangeEvent`s so every later stage (batching, merging, verifying)
reads one shape. Values are plain Python values (int, Decimal, str, bytes, datetime, ...), typed by the
table's `TableSchema`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Op(StrEnum):
    """Debezium operation codes."""

    CREATE = "c"
    UPDATE = "u"
    DELETE = "d"
    READ = "r"  # a snapshot row
    TRUNCATE = "t"


class SourceKind(StrEnum):
    """Kinds of source database."""

    POSTGRES = "postgres"
    MARIADB = "mariadb"
    MYSQL = "mysql"


@dataclass(frozen=True, order=True)
class TableId:
    """A captured table: the source (connector) name plus the table's place in the source database.

    `namespace` is the PostgreSQL schema or the MariaDB/MySQL database.
    """

    source: str
    namespace: str
    table: str

    def __str__(self) -> str:
        return f"{self.source}.{self.namespace}.{self.table}"


@dataclass(frozen=True)
class ColumnType:
    """The semantic type of a column, derived from Debezium's Connect schema.

    `kind` is one of: int8, int16, int32, int64, float32, float64, boolean, string, bytes, decimal,
    numeric (PostgreSQL numeric as canonical text: it may be NaN/±Infinity), date, time, timetz,
    duration (MySQL TIME), interval (ISO-8601 text), timestamp, timestamptz, json, uuid, bits,
    geometry (MySQL WKB with SRID), point (PostgreSQL text), array. docs/types.md maps each.
    `precision`/`scale` belong to decimals, `element` to arrays; `logical` keeps Debezium's logical
    name for diagnostics.
    """

    kind: str
    logical: str | None = None
    precision: int | None = None
    scale: int | None = None
    element: ColumnType | None = None


@dataclass(frozen=True)
class Column:
    """One column of a source table."""

    name: str
    type: ColumnType
    optional: bool = True


@dataclass(frozen=True)
class TableSchema:
    """The shape of a table as of one event: ordered columns and the primary-key column names.

    Schemas are interned by the decoder, so events of one table share one instance until the
    source schema changes.
    """

    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


# Hot-path records (one or more per Kafka record) are value objects built millions of times: not
# `frozen`, whose __init__ sets each field through object.__setattr__ (5x the cost for ChangeEvent's
# 12 fields), but hashed and compared by value all the same (`unsafe_hash`). Never assign to them.
@dataclass(slots=True, unsafe_hash=True)
class StreamRecord:
    """A stream record as received (raw bytes), enough to decode it again after a restart."""

    stream: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None

    @property
    def topic(self) -> str:
        """The Kafka topic (the stream's name), as kafka-python's records call it."""
        return self.stream

    @property
    def coordinates(self) -> KafkaCoordinates:
        return KafkaCoordinates(self.stream, self.partition, self.offset, self.timestamp)


@dataclass(slots=True, unsafe_hash=True)  # a hot-path value object (see StreamRecord)
class KafkaCoordinates:
    """Where the record was read from, for offsets, error context and tracing."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


# Slots: a catch-up holds tens of thousands of these at once (a batch, parked transactions). A
# hot-path value object (see StreamRecord).
@dataclass(slots=True, unsafe_hash=True)
class ChangeEvent:
    """One row change (or a table truncate) in the unified model.

    Attributes:
        table: the captured table.
        op: what happened.
        key: primary-key values (empty for a truncate).
        before: the row image before the change (None for create/read/truncate; may hold only the key
            when the source does not log full before-images).
        after: the row image after the change (None for delete/truncate).
        position: a string that sorts in source commit order (see `cdc_consumers.positions`); events
            inside one transaction are ordered by it too, and it identifies the change for idempotency.
        commit_time: the source transaction's commit time (UTC), from Debezium's source block.
        tx_id: the source transaction id, when the source reports one.
        schema: the table's columns and key as of this event.
        kafka: the record's Kafka coordinates.
        snapshot: true for rows read by the initial snapshot.
        unavailable: columns whose value the source did not send (PostgreSQL unchanged TOAST); they
            are None in `after`, and the merge carries the previous version's value forward.
    """

    table: TableId
    op: Op
    key: tuple[Any, ...]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    position: str
    commit_time: dt.datetime
    tx_id: str | None
    schema: TableSchema
    kafka: KafkaCoordinates | None = None
    snapshot: bool = False
    unavailable: frozenset[str] = frozenset()

    @property
    def image(self) -> dict[str, Any] | None:
        """The row as it stands after this event (the before-image for a delete)."""
        return self.before if self.op is Op.DELETE else self.after


# -- values Python's datetime cannot hold ------------------------------------------------------------
# The decoder emits these warehouse-neutral values; each warehouse's value adapter decides how they
# are stored (DuckDB and PostgreSQL exactly, Snowflake clamped or refused: docs/types.md).

DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Infinite:
    """PostgreSQL's `infinity` (or `-infinity` when `negative`) of a date or timestamp column."""

    negative: bool = False

    def __str__(self) -> str:
        return "-infinity" if self.negative else "infinity"


@dataclass(frozen=True)
class OutOfRange:
    """A date, timestamp or time of day outside what `datetime` holds, exact in Debezium's unit.

    `unit` is `days` (a date: days since 1970-01-01 in the proleptic Gregorian calendar, e.g. a BC
    date), `us` (a timestamp: µs since the epoch, e.g. year 0 from a snapshot) or `time_us` (µs past
    midnight: PostgreSQL's `24:00:00`). `str()` is PostgreSQL's text form (`4713-01-01 BC`).
    """

    unit: str
    value: int

    def __str__(self) -> str:
        if self.unit == "time_us":
            seconds, micros = divmod(self.value, 1_000_000)
            text = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            return f"{text}.{micros:06d}" if micros else text
        days, day_us = divmod(self.value, DAY_US) if self.unit == "us" else (self.value, 0)
        year, month, day = civil_from_days(days)
        era = " BC" if year <= 0 else ""
        text = f"{year if year > 0 else 1 - year:04d}-{month:02d}-{day:02d}"
        if self.unit == "us":
            text += " " + str(OutOfRange("time_us", day_us))
        return text + era


# The column kinds whose decoded values may be `Infinite` or `OutOfRange` (the temporal converters
# of `cdc_consumers.converters`); a value of any other kind is never one. Staging skips looking for
# them in other columns (tests/unit/test_types.py checks the decoded type matrix against this).
SPECIAL_TEMPORAL_KINDS = frozenset({"date", "time", "timestamp", "timestamptz"})


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day number since 1970-01-01, proleptic Gregorian, any year (year 0
    is 1 BC). H. Hinnant's algorithm, the inverse of `converters.temporal._days_from_civil`."""
    days += 719468
    era = days // 146097  # floor division: C's `(z - 146096) / 146097` for negative z
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day
