"""Debezium Connect-schema fields → `ColumnType`, and their JSON payload values → Python values.

One converter per logical-type family (modules `numeric`, `temporal`, `misc`), chosen once per column
when a schema is first seen (not per value), so decoding a row is a list of pre-bound functions. The
JSON converter with schemas enabled sends every field as `{"type", "optional", "field", "name"?,
"parameters"?}`; `name` is the logical type (e.g. `io.debezium.time.MicroTimestamp`) and decides the
meaning of the physical value. With `column.propagate.source.type` the parameters also name the
source column type (`__debezium.source.column.type`), which tells apart what shares a Connect type:
a PostgreSQL numeric sent as text, money, bit vs varbit. docs/types.md has the whole table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cdc_consumers.converters import misc, numeric, temporal
from cdc_consumers.converters.base import (
    UNAVAILABLE_FORMS,
    UNAVAILABLE_VALUE,
    Converter,
    identity,
    is_unavailable,
)
from cdc_consumers.converters.temporal import parse_zoned_timestamp
from core.model import Column, ColumnType

__all__ = [
    "UNAVAILABLE",
    "UNAVAILABLE_VALUE",
    "RowDecode",
    "column_type",
    "parse_zoned_timestamp",
    "row_decoder",
]

SOURCE_TYPE = "__debezium.source.column.type"
SOURCE_LENGTH = "__debezium.source.column.length"
# A row decoder: (payload row, lenient, may hold the placeholder) -> decoded row.
RowDecode = Callable[[dict[str, Any], bool, bool], dict[str, Any]]


class _Unavailable:
    """The decoded form of Debezium's unchanged-TOAST placeholder (one per column value)."""

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE = _Unavailable()

# logical name → (ColumnType kind, converter); the physical type is implied by the logical one.
_LOGICAL: dict[str, tuple[str, Converter]] = {
    "io.debezium.time.Date": ("date", temporal.date_from_days),
    "org.apache.kafka.connect.data.Date": ("date", temporal.date_from_days),
    "io.debezium.time.Time": ("time", temporal.time_ms),
    "org.apache.kafka.connect.data.Time": ("time", temporal.time_ms),
    "io.debezium.time.MicroTime": ("time", temporal.time_us),
    "io.debezium.time.NanoTime": ("time", temporal.time_ns),
    "io.debezium.time.Timestamp": ("timestamp", temporal.timestamp_ms),
    "org.apache.kafka.connect.data.Timestamp": ("timestamp", temporal.timestamp_ms),
    "io.debezium.time.MicroTimestamp": ("timestamp", temporal.timestamp_us),
    "io.debezium.time.NanoTimestamp": ("timestamp", temporal.timestamp_ns),
    "io.debezium.time.ZonedTimestamp": ("timestamptz", temporal.parse_zoned_timestamp),
    "io.debezium.time.ZonedTime": ("timetz", temporal.zoned_time),
    "io.debezium.time.Interval": ("interval", temporal.interval_text),
    "io.debezium.time.Year": ("int32", identity),
    "io.debezium.time.MicroDuration": ("int64", identity),
    "io.debezium.data.Json": ("json", misc.json_text),
    "io.debezium.data.Uuid": ("uuid", identity),
    "io.debezium.data.Enum": ("string", identity),
    "io.debezium.data.EnumSet": ("string", identity),
    "io.debezium.data.Xml": ("string", identity),
    "io.debezium.data.Tsvector": ("string", identity),
    "io.debezium.data.VariableScaleDecimal": ("decimal", numeric.variable_scale_decimal),
    "io.debezium.data.geometry.Geometry": ("geometry", misc.mysql_geometry),
}

_PHYSICAL: dict[str, tuple[str, Converter]] = {
    "int8": ("int16", identity),  # Connect int8 is signed; TINYINT UNSIGNED arrives as int16
    "int16": ("int16", identity),
    "int32": ("int32", identity),
    "int64": ("int64", identity),
    "float": ("float32", numeric.to_float),
    "float32": ("float32", numeric.to_float),
    "double": ("float64", numeric.to_float),
    "float64": ("float64", numeric.to_float),
    "boolean": ("boolean", identity),
    "string": ("string", identity),
    "bytes": ("bytes", misc.b64),
}


def _nullable(convert: Converter) -> Converter:
    def wrapped(value: Any) -> Any:
        if value is None:
            return None
        if is_unavailable(value):
            return UNAVAILABLE
        return convert(value)

    # row_decoder inlines the null/placeholder checks and skips identity conversions altogether.
    wrapped.raw = convert  # type: ignore[attr-defined]
    return wrapped


def _special(field: dict[str, Any], source_kind: str) -> tuple[ColumnType, Converter] | None:
    """Columns whose meaning depends on more than the logical name (see the module docstring)."""
    logical = field.get("name")
    params = field.get("parameters") or {}
    source_type = str(params.get(SOURCE_TYPE, "")).upper()
    physical = field.get("type")
    if logical == "org.apache.kafka.connect.data.Decimal":
        scale = int(params.get("scale", 0))
        precision = params.get("connect.decimal.precision")
        ctype = ColumnType("decimal", logical, int(precision) if precision else None, scale)
        return ctype, numeric.fixed_decimal(scale)
    if physical == "string" and logical is None and source_type in ("NUMERIC", "DECIMAL"):
        # PostgreSQL numeric in `decimal.handling.mode=string`: may be NaN/±Infinity, so text.
        return ColumnType("numeric", SOURCE_TYPE), numeric.numeric_text
    if physical == "string" and logical is None and source_type == "MONEY":
        # money has a fixed 2-digit fraction (money.fraction.digits) and fits 19 digits.
        return ColumnType("decimal", "MONEY", 19, 2), numeric.parse_decimal_text
    if logical == "io.debezium.data.Bits":
        length = params.get("length") or params.get(SOURCE_LENGTH)
        fixed = source_type != "VARBIT"
        return ColumnType("bits", logical), misc.bits(int(length) if length else None, fixed)
    if logical == "io.debezium.data.geometry.Point":
        if source_kind == "postgres":
            return ColumnType("point", logical), misc.pg_point
        return ColumnType("geometry", logical), misc.mysql_geometry
    if logical == "io.debezium.time.MicroTime" and source_kind != "postgres":
        # A MySQL/MariaDB TIME is a duration (-838:59:59 to 838:59:59), not a time of day.
        return ColumnType("duration", logical), temporal.duration_us
    return None


def column_type(
    field: dict[str, Any], source_kind: str = "postgres"
) -> tuple[ColumnType, Converter]:
    """The ColumnType of one Connect schema field and the function that converts its values.

    Raises:
        ValueError: the field uses a physical type cdchub cannot represent.
    """
    special = _special(field, source_kind)
    if special is not None:
        return special[0], _nullable(special[1])
    logical = field.get("name")
    physical = field.get("type")
    if logical in _LOGICAL:
        kind, convert = _LOGICAL[logical]
        return ColumnType(kind, logical), _nullable(convert)
    if physical == "array":
        items = dict(field["items"])
        params = field.get("parameters") or {}
        source_type = str(params.get(SOURCE_TYPE, ""))
        if source_type.startswith("_"):
            # Element type of a PostgreSQL array column (`_NUMERIC` → NUMERIC).
            items["parameters"] = {**(items.get("parameters") or {}), SOURCE_TYPE: source_type[1:]}
        element_type, element_convert = column_type(items, source_kind)

        def convert_array(values: list[Any]) -> list[Any]:
            return [None if v is None else element_convert(v) for v in values]

        # Not `identity`: a column whose converter is identity counts as plain in `row_decoder`,
        # which then checks only the text form of the placeholder, not an array's `[placeholder]`.
        def array_as_is(values: list[Any]) -> list[Any]:
            return values

        if getattr(element_convert, "raw", None) is identity:
            # Elements that pass as they arrived (text, integers): the list is the value, without
            # two calls per element (the placeholder is the whole value's, checked before this).
            convert_array = array_as_is

        return ColumnType("array", logical, element=element_type), _nullable(convert_array)
    if physical in _PHYSICAL:
        kind, convert = _PHYSICAL[physical]
        return ColumnType(kind, logical), _nullable(convert)
    raise ValueError(f"unsupported Connect type {physical!r} (logical {logical!r})")


def row_decoder(
    fields: list[dict[str, Any]], source_kind: str = "postgres"
) -> tuple[tuple[Column, ...], RowDecode]:
    """Columns of a before/after struct and a function decoding one row of it.

    A column holding Debezium's unchanged-TOAST placeholder decodes to `UNAVAILABLE`.

    The decoder's third argument, `placeholder`, may be False when the row's payload cannot hold the
    placeholder in any form (`EnvelopeDecoder` looks for it in the record's bytes once): the per-
    column checks are then skipped.

    The decoder's second argument, `lenient`, turns a value that does not convert into None. It is
    used for delete before-images: with PostgreSQL's REPLICA IDENTITY DEFAULT only the key is real
    and Debezium fills NOT NULL columns with type defaults ("" for a uuid or jsonb, 0, the epoch);
    the merge replaces them with the values of the version the delete closes.
    """
    columns: list[Column] = []
    converters: list[tuple[str, Converter]] = []
    # The strict path, run for every row: the names in order, the columns whose value passes as it
    # arrived (only Debezium's placeholder string is checked), and the ones that convert.
    plain: list[str] = []
    converting: list[tuple[str, Converter]] = []
    for field in fields:
        ctype, convert = column_type(field, source_kind)
        columns.append(Column(field["field"], ctype, bool(field.get("optional", True))))
        converters.append((field["field"], convert))
        raw = getattr(convert, "raw", None)
        if raw is identity:
            plain.append(field["field"])
        else:
            converting.append((field["field"], raw or convert))
    names = tuple(name for name, _ in converters)
    name_set = frozenset(names)
    placeholders = frozenset(UNAVAILABLE_FORMS)

    def decode(
        row: dict[str, Any], lenient: bool = False, placeholder: bool = True
    ) -> dict[str, Any]:
        if not lenient:
            # A payload row holds every column of its schema, in order: decoded in place (the
            # decoder owns the parsed payload). Anything else is read column by column.
            if row.keys() == name_set:
                out = row
            else:
                get = row.get
                out = {name: get(name) for name in names}
            if not placeholder:
                for name, convert in converting:
                    value = out[name]
                    if value is not None:
                        out[name] = convert(value)
                return out
            for name in plain:
                value = out[name]
                if value.__class__ is str and value in placeholders:
                    out[name] = UNAVAILABLE
            for name, convert in converting:
                value = out[name]
                if value is not None:
                    out[name] = UNAVAILABLE if is_unavailable(value) else convert(value)
            return out
        out = {}
        for name, convert in converters:
            try:
                out[name] = convert(row.get(name))
            except (ValueError, TypeError, ArithmeticError):
                out[name] = None
        return out

    return tuple(columns), decode
