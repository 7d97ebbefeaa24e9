"""PostgreSQL's value adapter: how decoded values are written by `COPY`.

PostgreSQL holds every value exactly: ±infinity, BC dates and `24:00:00` natively (written as their
text), numerics of any precision, JSON as jsonb.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from connectors.warehouses.values import adapt_temporal, text_value
from core.model import ColumnType, Infinite, OutOfRange


def _raw_json(value: str) -> str:
    return value


def temporal(value: Infinite | OutOfRange, ctype: ColumnType) -> str:
    """PostgreSQL holds ±infinity, BC dates and `24:00:00` natively: `COPY` gets its text form."""
    return str(value)


def copy_value(value: Any, ctype: ColumnType, as_text: bool) -> Any:
    """A value in the form `COPY` takes for its column's warehouse type."""
    if value is None:
        return None
    value = adapt_temporal(value, ctype, temporal)
    if as_text:
        return text_value(value)
    if ctype.kind == "json":
        # Debezium gives JSON as text; Jsonb() stops psycopg from quoting it as a plain string.
        return Jsonb(value, dumps=_raw_json) if isinstance(value, str) else Jsonb(value)
    return value
