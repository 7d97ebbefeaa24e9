"""Value shaping shared by the warehouse clients' bulk paths."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlglot import exp

from core.model import ColumnType, Infinite, OutOfRange
from merge.dialect import Dialect

# Kinds whose values are already text when they reach a text column.
_TEXTUAL = ("string", "json", "uuid")


def text_value(value: Any) -> Any:
    """A value headed for a text fallback column (e.g. a nested array) keeps every digit."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def falls_back_to_text(ctype: ColumnType, dialect: Dialect) -> bool:
    """True when the dialect stores a non-text kind in its text fallback type."""
    if ctype.kind in _TEXTUAL:
        return False
    return dialect.column_type(ctype).this in exp.DataType.TEXT_TYPES


TemporalAdapter = Callable[[Infinite | OutOfRange, ColumnType], Any]


def adapt_temporal(value: Any, ctype: ColumnType, adapter: TemporalAdapter) -> Any:
    """`value` with each warehouse-neutral temporal value (`Infinite`, `OutOfRange`, also inside an
    array) replaced by what `adapter` makes of it for its column type; other values as they are."""
    if isinstance(value, Infinite | OutOfRange):
        return adapter(value, ctype)
    if isinstance(value, list) and ctype.element is not None:
        return [adapt_temporal(v, ctype.element, adapter) for v in value]
    return value
