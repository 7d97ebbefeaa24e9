"""Values of every semantic kind, as the decoder produces them, for staging round trips."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from core.model import ColumnType

KINDS: list[tuple[str, ColumnType, Any]] = [
    ("i16", ColumnType("int16"), -32768),
    ("i64", ColumnType("int64"), 2**63 - 1),
    ("f32", ColumnType("float32"), 1.5),
    ("f64", ColumnType("float64"), float("nan")),
    ("num_nan", ColumnType("decimal"), Decimal("NaN")),
    ("num_wide", ColumnType("decimal", precision=1000, scale=2), Decimal("9" * 998 + ".99")),
    ("num_any", ColumnType("decimal"), Decimal("-12345678901234567890.000000000000000001")),
    ("txt", ColumnType("string"), "é🙂 \t\n\\ 'quote' \"dq\""),
    ("empty", ColumnType("string"), ""),
    ("raw", ColumnType("bytes"), bytes(range(256))),
    ("day", ColumnType("date"), dt.date(1, 1, 1)),
    ("clock", ColumnType("time"), dt.time(23, 59, 59, 999999)),
    ("naive", ColumnType("timestamp"), dt.datetime(2026, 3, 29, 2, 30)),
    ("instant", ColumnType("timestamptz"), dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)),
    ("doc", ColumnType("json"), '{"a":[1,2,{"b":null}],"é":"🙂"}'),
    ("ident", ColumnType("uuid"), str(uuid.UUID(int=12345))),
    ("tags", ColumnType("array", element=ColumnType("string")), ["a", None, "b,c", '"q"', ""]),
    (
        "amounts",
        ColumnType("array", element=ColumnType("decimal", precision=12, scale=2)),
        [Decimal("1.50"), None],
    ),
    (
        "nested",
        ColumnType("array", element=ColumnType("array", element=ColumnType("int32"))),
        [[1, 2], [3]],
    ),
]


def expected(name: str, value: Any) -> Any:
    """What the warehouse returns for `value` (JSON as text, uuids as UUID, nested arrays as text)."""
    if name == "ident":
        return uuid.UUID(value)
    if name == "nested":
        return str(value)
    return value
