"""As-of queries over history: the rows a source table held at an instant.

For an instant T, a version is the row's state at T when `_cdc_valid_from <= T < _cdc_valid_to` (an
open `_cdc_valid_to` means "still current") and it is not a delete. Validity intervals of a key never
overlap (see docs/scd2.md), so this yields at most one row per key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlglot import exp

from merge.naming import IS_DELETED, VALID_FROM, VALID_TO, TableNames
from merge.plan import col, table


def instant(at: dt.datetime) -> exp.Expression:
    """A TIMESTAMPTZ literal for an aware datetime (naive ones are taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    text = at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    return exp.cast(exp.Literal.string(text), exp.DataType.build("TIMESTAMPTZ"))


def as_of(
    names: TableNames, columns: Sequence[str], at: dt.datetime, *, order_by: Sequence[str] = ()
) -> exp.Select:
    """`SELECT columns FROM <history> WHERE valid at `at` AND NOT deleted`."""
    when = instant(at)
    valid = exp.and_(
        exp.LTE(this=col(VALID_FROM), expression=when),
        exp.paren(
            exp.or_(
                exp.GT(this=col(VALID_TO), expression=when.copy()),
                exp.Is(this=col(VALID_TO), expression=exp.null()),
            )
        ),
        exp.not_(col(IS_DELETED)),
    )
    query = exp.select(*(col(c) for c in columns)).from_(table(names.history, names.schema))
    query = query.where(valid)
    if order_by:
        query = query.order_by(*(col(c) for c in order_by))
    return query
