"""Snowflake's value adapter: how decoded values are bound into the array-bound `INSERT`.

Snowflake has no ±infinity and no `24:00:00`, and advises against years before 1582: ±infinity
become the ends of the range, BC dates and `24:00:00` are refused with `UnrepresentableValue`
(docs/types.md). Arrays are JSON text (its ARRAY is an untyped VARIANT).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from connectors.warehouses.values import adapt_temporal, text_value
from core.errors import UnrepresentableValue
from core.model import ColumnType, Infinite, OutOfRange

_LAST = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
_FIRST = dt.datetime(1, 1, 1)
# Snowflake has no ±infinity: they become the ends of the range every Snowflake client can read,
# so order and comparisons keep working (`infinity` and 9999-12-31 23:59:59.999999 become one value).
_ENDS: dict[str, tuple[Any, Any]] = {
    "date": (_FIRST.date(), _LAST.date()),
    "timestamp": (_FIRST, _LAST),
    "timestamptz": (_FIRST.replace(tzinfo=dt.UTC), _LAST.replace(tzinfo=dt.UTC)),
}


def temporal(value: Infinite | OutOfRange, ctype: ColumnType) -> Any:
    """±infinity as the ends of the range; a year before 1 or `24:00:00` is refused (a Snowflake
    TIME stops at 23:59:59.999999999, and years before 1582 are not reliably Gregorian there)."""
    if isinstance(value, Infinite) and ctype.kind in _ENDS:
        first, last = _ENDS[ctype.kind]
        return first if value.negative else last
    raise UnrepresentableValue(
        f"the value {value} cannot be stored in a Snowflake {ctype.kind.upper()} column. "
        "Change the source row, or leave the column out of the connector "
        "(column.exclude.list), then restart `cdchub run`",
        warehouse="snowflake",
    )


def bind_value(value: Any, ctype: ColumnType, as_text: bool) -> Any:
    """A value the connector can bind into its column's Snowflake type."""
    if value is None:
        return None
    value = adapt_temporal(value, ctype, temporal)
    if ctype.kind == "array":
        return json.dumps(value, default=str, ensure_ascii=False)
    if as_text:
        return text_value(value)
    return value


def with_column(
    exc: UnrepresentableValue,
    columns: Sequence[tuple[str, ColumnType]],
    rows: Sequence[Sequence[Any]],
) -> UnrepresentableValue:
    """The refusal again, naming the first column that holds a value Snowflake cannot store."""
    for row in rows:
        for (name, ctype), value in zip(columns, row, strict=True):
            try:
                adapt_temporal(value, ctype, temporal)
            except UnrepresentableValue:
                return UnrepresentableValue(exc.message, **exc.context, column=name)
    return exc
