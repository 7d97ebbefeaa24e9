"""ColumnType → Arrow type, for bulk staging through Arrow (exact: no value goes through text)."""

from __future__ import annotations

import pyarrow as pa

from core.model import ColumnType

_SIMPLE: dict[str, pa.DataType] = {
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
    "bytes": pa.binary(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),
    "uuid": pa.string(),
    "duration": pa.duration("us"),
    "geometry": pa.binary(),
}


def arrow_type(ctype: ColumnType, max_decimal_precision: int = 38) -> pa.DataType:
    """The Arrow type that carries values of `ctype` into the warehouse without loss."""
    if ctype.kind == "decimal":
        if ctype.precision is None or ctype.precision > max_decimal_precision:
            return pa.string()
        return pa.decimal128(ctype.precision, ctype.scale or 0)
    if ctype.kind == "array":
        assert ctype.element is not None
        if ctype.element.kind == "array":
            return pa.string()
        return pa.list_(arrow_type(ctype.element, max_decimal_precision))
    return _SIMPLE.get(ctype.kind, pa.string())
