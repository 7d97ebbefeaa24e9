"""Dates, times, durations and instants in every Debezium encoding, at microsecond precision.

Values Python's `datetime` cannot hold (BC dates, PostgreSQL `infinity`, the time `24:00:00`) become
warehouse-neutral values (`Infinite`, `OutOfRange` in `core.model`) that keep the exact
Connect unit; each warehouse's value adapter decides how they are stored (docs/types.md).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from core.model import DAY_US, Infinite, OutOfRange

EPOCH_DATE = dt.date(1970, 1, 1)
_EPOCH_ORDINAL = EPOCH_DATE.toordinal()
EPOCH = dt.datetime(1970, 1, 1)
UTC = dt.UTC
# The sentinels Debezium sends for PostgreSQL's ±infinity timestamps
# (`infinity` → 9223372036825200000, `-infinity` → -9223372036832400000: docs/facts.md).
_PG_INFINITY_US = 9_223_372_036_825_200_000
_PG_NEG_INFINITY_US = -9_223_372_036_832_400_000
_MIN_DAYS = (dt.date.min - EPOCH_DATE).days
_MAX_DAYS = (dt.date.max - EPOCH_DATE).days
_MIN_US = _MIN_DAYS * DAY_US
_MAX_US = (_MAX_DAYS + 1) * DAY_US - 1


def date_from_days(days: int) -> dt.date | OutOfRange:
    """`io.debezium.time.Date`: days since the epoch (`OutOfRange` outside years 1-9999)."""
    if _MIN_DAYS <= days <= _MAX_DAYS:
        return dt.date.fromordinal(_EPOCH_ORDINAL + days)
    return OutOfRange("days", days)


def time_ms(ms: int) -> dt.time | OutOfRange:
    """`io.debezium.time.Time`: milliseconds past midnight."""
    return time_us(ms * 1000)


def time_us(us: int) -> dt.time | OutOfRange:
    """`io.debezium.time.MicroTime` of a PostgreSQL time: µs past midnight (`24:00:00` is
    `OutOfRange`: `datetime.time` stops at 23:59:59.999999)."""
    if 0 <= us < DAY_US:
        return (EPOCH + dt.timedelta(microseconds=us)).time()
    return OutOfRange("time_us", us)


def time_ns(ns: int) -> dt.time | OutOfRange:
    """`io.debezium.time.NanoTime`, truncated to microseconds."""
    return time_us(ns // 1000)


def duration_us(us: int) -> dt.timedelta:
    """A MySQL/MariaDB TIME (`MicroTime`): a signed duration up to ±838:59:59, not a time of day."""
    return dt.timedelta(microseconds=us)


def timestamp_us(us: int) -> dt.datetime | Infinite | OutOfRange:
    """`io.debezium.time.MicroTimestamp`: naive µs since the epoch; PostgreSQL ±infinity as
    `Infinite`, other years outside 1-9999 as `OutOfRange`."""
    if us >= _PG_INFINITY_US:
        return Infinite()
    if us <= _PG_NEG_INFINITY_US:
        return Infinite(negative=True)
    if _MIN_US <= us <= _MAX_US:
        return EPOCH + dt.timedelta(microseconds=us)
    return OutOfRange("us", us)


def timestamp_ms(ms: int) -> dt.datetime | Infinite | OutOfRange:
    """`io.debezium.time.Timestamp`: naive ms since the epoch."""
    return timestamp_us(ms * 1000)


def timestamp_ns(ns: int) -> dt.datetime | Infinite | OutOfRange:
    """`io.debezium.time.NanoTimestamp`, truncated to microseconds."""
    return timestamp_us(ns // 1000)


def parse_zoned_timestamp(text: str) -> dt.datetime | Infinite | OutOfRange:
    """`io.debezium.time.ZonedTimestamp` (ISO-8601 with `Z` or an offset) → an aware UTC datetime;
    PostgreSQL's `infinity`/`-infinity` → `Infinite`."""
    if text == "infinity":
        return Infinite()
    if text == "-infinity":
        return Infinite(negative=True)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        # A year Python cannot hold (0 or BC, e.g. `0000-12-30T00:00:00Z` from a snapshot).
        return OutOfRange("us", _iso_to_us(text))
    tz = parsed.tzinfo
    if tz is UTC:  # Debezium writes UTC (`Z`): nothing to convert
        return parsed
    if tz is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


_ISO_INSTANT = re.compile(
    r"^(?P<y>[+-]?\d{4,})-(?P<mo>\d\d)-(?P<d>\d\d)T(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)"
    r"(?:\.(?P<f>\d{1,6}))?Z$"
)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, for any year (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400  # floor division (the C original adjusts for truncation by hand)
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _iso_to_us(text: str) -> int:
    match = _ISO_INSTANT.match(text)
    if match is None:
        raise ValueError(f"not an ISO-8601 UTC instant: {text!r}")
    p = match.groupdict()
    days = _days_from_civil(int(p["y"]), int(p["mo"]), int(p["d"]))
    seconds = int(p["h"]) * 3600 + int(p["mi"]) * 60 + int(p["s"])
    return (days * 86400 + seconds) * 1_000_000 + int((p["f"] or "0").ljust(6, "0"))


def zoned_time(text: str) -> str:
    """`io.debezium.time.ZonedTime`: Debezium has already moved the time to UTC (`11:14:15.123456Z`
    for `13:14:15.123456+02`), so the original offset is gone; the UTC time of day is kept as text."""
    return text


_ISO_INTERVAL = re.compile(
    r"^P(?:(?P<y>-?\d+)Y)?(?:(?P<mo>-?\d+)M)?(?:(?P<w>-?\d+)W)?(?:(?P<d>-?\d+)D)?"
    r"(?:T(?:(?P<h>-?\d+)H)?(?:(?P<mi>-?\d+)M)?(?:(?P<s>-?\d+(?:\.\d+)?)S)?)?$"
)


def interval_parts(text: str) -> tuple[int, int, int]:
    """An ISO-8601 duration (Debezium `Interval` text, or PostgreSQL's `iso_8601` IntervalStyle) as
    (months, days, microseconds): the three fields a PostgreSQL interval really has.

    Raises:
        ValueError: not an ISO-8601 duration.
    """
    match = _ISO_INTERVAL.match(text)
    if match is None:
        raise ValueError(f"not an ISO-8601 interval: {text!r}")
    part = {k: v or "0" for k, v in match.groupdict().items()}
    months = int(part["y"]) * 12 + int(part["mo"])
    days = int(part["w"]) * 7 + int(part["d"])
    micros = (int(part["h"]) * 3600 + int(part["mi"]) * 60) * 1_000_000 + int(
        Decimal(part["s"]) * 1_000_000
    )
    return months, days, micros


def interval_text(text: str) -> str:
    """`io.debezium.time.Interval` (`interval.handling.mode=string`): ISO-8601 text, kept as sent
    (months, days and time stay apart; the default microsecond mode assumes 30-day months)."""
    interval_parts(text)  # reject anything that is not an ISO duration, at decode time
    return text
