"""Debezium Connect-schema fields → `ColumnType`, and their JSON payload values → Python values.

One converter per logical-type family, chosen once per column when a schema is first seen (not per
value), so decoding a row is a list of pre-bound functions. The JSON converter with schemas enabled
sends every field as `{"type", "optional", "field", "name"?, "parameters"?}`; `name` is the logical
type (e.g. `io.debezium.time.MicroTimestamp`) and decides the meaning of the physical value.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cdc_consumers.model import Column, ColumnType

Converter = Callable[[Any], Any]

EPOCH_DATE = dt.date(1970, 1, 1)
EPOCH = dt.datetime(1970, 1, 1)
UTC = dt.UTC

# Debezium's placeholder for an unchanged TOASTed column (PostgreSQL, REPLICA IDENTITY DEFAULT).
# It is passed through untouched here; the merge carries the previous value forward.
UNAVAILABLE_VALUE = "__debezium_unavailable_value"


def _identity(value: Any) -> Any:
    return value


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _date(days: int) -> dt.date:
    return EPOCH_DATE + dt.timedelta(days=days)


def _time_ms(ms: int) -> dt.time:
    return (EPOCH + dt.timedelta(milliseconds=ms)).time()


def _time_us(us: int) -> dt.time | dt.timedelta:
    # MySQL TIME may exceed 24h or be negative; keep such values as durations rather than wrap them.
    if 0 <= us < 86_400_000_000:
        return (EPOCH + dt.timedelta(microseconds=us)).time()
    return dt.timedelta(microseconds=us)


def _time_ns(ns: int) -> dt.time | dt.timedelta:
    return _time_us(ns // 1000)


def _ts_ms(ms: int) -> dt.datetime:
    return EPOCH + dt.timedelta(milliseconds=ms)


def _ts_us(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def _ts_ns(ns: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=ns // 1000)


def parse_zoned_timestamp(text: str) -> dt.datetime:
    """Parse Debezium's ZonedTimestamp (ISO-8601, `Z` or an offset) into an aware UTC datetime."""
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _decimal(scale: int) -> Converter:
    def convert(value: str) -> Decimal:
        unscaled = int.from_bytes(base64.b64decode(value), "big", signed=True)
        return Decimal(unscaled).scaleb(-scale)

    return convert


def _variable_scale_decimal(value: dict[str, Any]) -> Decimal:
    unscaled = int.from_bytes(base64.b64decode(value["value"]), "big", signed=True)
    return Decimal(unscaled).scaleb(-int(value["scale"]))


def _json_text(value: str) -> str:
    # Normalise to compact JSON so equal documents compare equal whatever the source's spacing.
    return json.dumps(json.loads(value), separators=(",", ":"), ensure_ascii=False, sort_keys=True)


# logical name → (ColumnType kind, converter); the physical type is implied by the logical one.
_LOGICAL: dict[str, tuple[str, Converter]] = {
    "io.debezium.time.Date": ("date", _date),
    "org.apache.kafka.connect.data.Date": ("date", _date),
    "io.debezium.time.Time": ("time", _time_ms),
    "org.apache.kafka.connect.data.Time": ("time", _time_ms),
    "io.debezium.time.MicroTime": ("time", _time_us),
    "io.debezium.time.NanoTime": ("time", _time_ns),
    "io.debezium.time.Timestamp": ("timestamp", _ts_ms),
    "org.apache.kafka.connect.data.Timestamp": ("timestamp", _ts_ms),
    "io.debezium.time.MicroTimestamp": ("timestamp", _ts_us),
    "io.debezium.time.NanoTimestamp": ("timestamp", _ts_ns),
    "io.debezium.time.ZonedTimestamp": ("timestamptz", parse_zoned_timestamp),
    "io.debezium.time.ZonedTime": ("string", _identity),
    "io.debezium.time.Year": ("int32", _identity),
    "io.debezium.time.MicroDuration": ("int64", _identity),
    "io.debezium.data.Json": ("json", _json_text),
    "io.debezium.data.Uuid": ("uuid", _identity),
    "io.debezium.data.Enum": ("string", _identity),
    "io.debezium.data.EnumSet": ("string", _identity),
    "io.debezium.data.Xml": ("string", _identity),
    "io.debezium.data.Bits": ("bytes", _b64),
    "io.debezium.data.VariableScaleDecimal": ("decimal", _variable_scale_decimal),
}

_PHYSICAL: dict[str, tuple[str, Converter]] = {
    "int8": ("int16", _identity),  # Connect int8 is signed; TINYINT UNSIGNED arrives as int16
    "int16": ("int16", _identity),
    "int32": ("int32", _identity),
    "int64": ("int64", _identity),
    "float": ("float32", float),
    "float32": ("float32", float),
    "double": ("float64", float),
    "float64": ("float64", float),
    "boolean": ("boolean", _identity),
    "string": ("string", _identity),
    "bytes": ("bytes", _b64),
}


def _nullable(convert: Converter) -> Converter:
    def wrapped(value: Any) -> Any:
        if value is None or value == UNAVAILABLE_VALUE:
            return value
        return convert(value)

    return wrapped


def column_type(field: dict[str, Any]) -> tuple[ColumnType, Converter]:
    """The ColumnType of one Connect schema field and the function that converts its values.

    Raises:
        ValueError: the field uses a physical type cdchub cannot represent.
    """
    logical = field.get("name")
    params = field.get("parameters") or {}
    physical = field.get("type")
    if logical == "org.apache.kafka.connect.data.Decimal":
        scale = int(params.get("scale", 0))
        precision = params.get("connect.decimal.precision")
        ctype = ColumnType(
            "decimal", logical, int(precision) if precision is not None else None, scale
        )
        return ctype, _nullable(_decimal(scale))
    if logical in _LOGICAL:
        kind, convert = _LOGICAL[logical]
        return ColumnType(kind, logical), _nullable(convert)
    if physical == "array":
        element_type, element_convert = column_type(field["items"])

        def convert_array(values: list[Any]) -> list[Any]:
            return [None if v is None else element_convert(v) for v in values]

        return ColumnType("array", logical, element=element_type), _nullable(convert_array)
    if physical in _PHYSICAL:
        kind, convert = _PHYSICAL[physical]
        return ColumnType(kind, logical), _nullable(convert)
    raise ValueError(f"unsupported Connect type {physical!r} (logical {logical!r})")


def row_decoder(
    fields: list[dict[str, Any]],
) -> tuple[tuple[Column, ...], Callable[[dict[str, Any], bool], dict[str, Any]]]:
    """Columns of a before/after struct and a function decoding one row of it.

    The decoder's second argument, `lenient`, turns a value that does not convert into None. It is
    used for delete before-images: with PostgreSQL's REPLICA IDENTITY DEFAULT only the key is real
    and Debezium fills NOT NULL columns with type defaults ("" for a uuid or jsonb, 0, the epoch);
    the merge replaces them with the values of the version the delete closes.
    """
    columns: list[Column] = []
    converters: list[tuple[str, Converter]] = []
    for field in fields:
        ctype, convert = column_type(field)
        columns.append(Column(field["field"], ctype, bool(field.get("optional", True))))
        converters.append((field["field"], convert))

    def decode(row: dict[str, Any], lenient: bool = False) -> dict[str, Any]:
        if not lenient:
            return {name: convert(row.get(name)) for name, convert in converters}
        out: dict[str, Any] = {}
        for name, convert in converters:
            try:
                out[name] = convert(row.get(name))
            except (ValueError, TypeError, ArithmeticError):
                out[name] = None
        return out

    return tuple(columns), decode
