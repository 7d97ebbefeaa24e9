"""Value shaping shared by the warehouse clients' bulk paths."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlglot import exp

from core.model import ColumnType
from merge.dialects.base import Dialect

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
