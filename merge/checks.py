"""History invariants as queries: each returns the number of violating rows (0 when the rule holds).

- one current version per key;
- `_cdc_valid_to` of each version equals the next version's `_cdc_valid_from` (no gap, no overlap),
  and the last version of a key is open;
- validity never runs backwards (`_cdc_valid_from` ≤ next `_cdc_valid_from`).
"""

from __future__ import annotations

from sqlglot import exp

from merge.naming import IS_CURRENT, SOURCE_POS, VALID_FROM, VALID_TO
from merge.shapes import MergeTarget
from merge.sqltree import col


def _count(source: exp.Expression, where: exp.Expr) -> exp.Select:
    return (
        exp.select(exp.Count(this=exp.Star()))
        .from_(exp.Subquery(this=source, alias=exp.TableAlias(this=exp.to_identifier("v"))))
        .where(where)
    )


def current_violations(target: MergeTarget) -> exp.Select:
    """Keys whose number of current versions is not exactly one."""
    per_key = (
        exp.select(
            *(col(k) for k in target.key),
            exp.Sum(
                this=exp.Case(
                    ifs=[exp.If(this=col(IS_CURRENT), true=exp.Literal.number(1))],
                    default=exp.Literal.number(0),
                )
            ).as_("currents"),
        )
        .from_(target.history)
        .group_by(*(col(k) for k in target.key))
    )
    return _count(per_key, exp.NEQ(this=col("currents"), expression=exp.Literal.number(1)))


def link_violations(target: MergeTarget) -> exp.Select:
    """Versions whose valid_to is not the next version's valid_from, or whose interval runs back."""
    window = exp.Window(
        this=exp.Anonymous(this="LEAD", expressions=[col(VALID_FROM)]),
        partition_by=[col(k) for k in target.key],
        order=exp.Order(expressions=[exp.Ordered(this=col(SOURCE_POS))]),
    )
    linked = exp.select(col(VALID_FROM), col(VALID_TO), window.as_("next_from")).from_(
        target.history
    )
    broken = exp.or_(
        exp.NullSafeNEQ(this=col(VALID_TO), expression=col("next_from")),
        exp.GT(this=col(VALID_FROM), expression=col("next_from")),
    )
    return _count(linked, broken)
