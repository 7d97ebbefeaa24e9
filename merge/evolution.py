"""Schema evolution rules: what a warehouse column does when its source column's type changes.

The warehouse keeps one type per column for the table's whole history, so a change is judged by
whether the *warehouse* type can hold every value of both the old and the new source type:

- **same**: the dialect maps both to one warehouse type (e.g. `varchar(20)` → `varchar(40)` both map
  to an unbounded text type). Nothing to do.
- **widen**: a wider warehouse type holds every old and new value exactly (int → bigint, float →
  double, a decimal with more integer digits or more scale, an integer into a wide-enough decimal,
  a decimal into PostgreSQL's exact `numeric` text).
  The column's type is altered in place, in history and current.
- **keep**: the source narrowed (bigint → int, double → float, fewer decimal digits). The existing,
  wider warehouse type still holds every new value, so it stays as it is.
- **incompatible**: anything else (int → text, text → int, json → uuid, …). Applying it would lose or
  invent data, so the table stops with an error naming the column and the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.model import ColumnType
from merge.dialect import Dialect

_INT_RANK = {"int8": 0, "int16": 1, "int32": 2, "int64": 3}
# Decimal digits an integer kind needs.
_INT_DIGITS = {"int8": 3, "int16": 5, "int32": 10, "int64": 19}
_FLOAT_RANK = {"float32": 0, "float64": 1}


class Change(StrEnum):
    """How a warehouse column follows a source type change."""

    SAME = "same"
    WIDEN = "widen"
    KEEP = "keep"
    INCOMPATIBLE = "incompatible"


@dataclass(frozen=True)
class Evolution:
    """The verdict for one column: what to do, and the warehouse type it keeps or takes."""

    change: Change
    column_type: ColumnType


def _digits(t: ColumnType) -> tuple[int, int] | None:
    """(integer digits, scale) of an exact numeric type; None when unbounded or not numeric."""
    if t.kind in _INT_DIGITS:
        return _INT_DIGITS[t.kind], 0
    if t.kind == "decimal" and t.precision is not None:
        scale = t.scale or 0
        return t.precision - scale, scale
    return None


def evolve(old: ColumnType, new: ColumnType, dialect: Dialect) -> Evolution:
    """Judge a source type change of one column against the warehouse type `old` maps to."""
    old_sql = dialect.column_type(old).sql(dialect=dialect.SQLGLOT_DIALECT)
    new_sql = dialect.column_type(new).sql(dialect=dialect.SQLGLOT_DIALECT)
    if old_sql == new_sql:
        return Evolution(Change.SAME, old)
    if old_sql == dialect.build(dialect.FALLBACK_TYPE).sql(dialect=dialect.SQLGLOT_DIALECT) and (
        old.kind == new.kind or {old.kind, new.kind} <= {"decimal", *_INT_DIGITS}
    ):
        return Evolution(
            Change.KEEP, old
        )  # the lossless text fallback holds any value of the family
    exact = {"decimal", *_INT_DIGITS}
    if new.kind == "numeric" and old.kind in exact:
        # Exact numeric text (any digits, NaN, ±Infinity), e.g. after the connector switched
        # `decimal.handling.mode` to string: its warehouse type holds every decimal.
        return Evolution(Change.WIDEN, new)
    if old.kind == "numeric" and new.kind in exact:
        return Evolution(Change.KEEP, old)
    if old.kind in _INT_RANK and new.kind in _INT_RANK:
        wider = _INT_RANK[new.kind] > _INT_RANK[old.kind]
        return Evolution(Change.WIDEN, new) if wider else Evolution(Change.KEEP, old)
    if old.kind in _FLOAT_RANK and new.kind in _FLOAT_RANK:
        wider = _FLOAT_RANK[new.kind] > _FLOAT_RANK[old.kind]
        return Evolution(Change.WIDEN, new) if wider else Evolution(Change.KEEP, old)
    old_digits, new_digits = _digits(old), _digits(new)
    if old_digits and new_digits and (old.kind == "decimal" or new.kind == "decimal"):
        integer = max(old_digits[0], new_digits[0])
        scale = max(old_digits[1], new_digits[1])
        if (integer, scale) == old_digits and old.kind == "decimal":
            return Evolution(Change.KEEP, old)
        merged = ColumnType("decimal", precision=integer + scale, scale=scale)
        return Evolution(Change.WIDEN, merged)
    return Evolution(Change.INCOMPATIBLE, old)
