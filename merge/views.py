"""Ready-made views over a history table, for the common questions (`cdchub views`).

For a replicated table `orders` (history `orders_history`) in schema `shop`:

- `shop.orders_versions`: every version, numbered per key in source order: `_cdc_version` (1 = first
  known), `_cdc_versions` (how many the key has), `_cdc_change` (`snapshot`, `insert`, `update`,
  `delete`, `truncate`) and `_cdc_prev_source_pos`. "Versions per key" and "state as of T" (filter
  `_cdc_valid_from <= T AND (_cdc_valid_to > T OR _cdc_valid_to IS NULL) AND NOT _cdc_is_deleted`,
  which is what `cdchub sql --as-of` writes for you) both read it.
- `shop.orders_changes`: one row per changed column of each update (and per column of an insert or a
  delete): the key, `_cdc_valid_from`, `_cdc_op`, `_cdc_change`, `column_name`, `old_value`,
  `new_value` (both as text). "What changed between T1 and T2" is a filter on `_cdc_valid_from`.

The views are plain SQL over the history table, built with sqlglot for each warehouse; they hold no
data, so they never go stale, and dropping them loses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from merge.naming import (
    CHANGES_SUFFIX,
    IS_DELETED,
    OP,
    SOURCE_POS,
    VALID_FROM,
    VERSIONS_SUFFIX,
    TableNames,
)
from merge.sqltree import col, ident, table

VERSION = "_cdc_version"
VERSIONS = "_cdc_versions"
CHANGE = "_cdc_change"
PREV_POS = "_cdc_prev_source_pos"


@dataclass(frozen=True)
class ViewSpec:
    """One view to create: its name, its schema and its query."""

    schema: str
    name: str
    query: exp.Query

    def create(self) -> exp.Expression:
        """`CREATE OR REPLACE VIEW schema.name AS query`."""
        return exp.Create(
            this=table(self.name, self.schema), kind="VIEW", replace=True, expression=self.query
        )

    def drop(self) -> exp.Expression:
        """`DROP VIEW IF EXISTS schema.name`."""
        return exp.Drop(tables=[table(self.name, self.schema)], kind="VIEW", exists=True)


def _window(keys: Sequence[str]) -> exp.Window:
    return exp.Window(
        partition_by=[col(k) for k in keys],
        order=exp.Order(expressions=[exp.Ordered(this=col(SOURCE_POS))]),
    )


def change_kind() -> exp.Expression:
    """`_cdc_op` spelt out: r snapshot, c insert, u update, d delete, t truncate."""
    case = exp.Case(this=col(OP))
    for op, word in (("r", "snapshot"), ("c", "insert"), ("u", "update"), ("d", "delete")):
        case = case.when(exp.Literal.string(op), exp.Literal.string(word))
    return case.else_(exp.Literal.string("truncate"))


def versions_view(names: TableNames, keys: Sequence[str]) -> ViewSpec:
    """`<table>_versions`: the history with version numbers per key and the change spelt out."""
    partition = exp.Window(partition_by=[col(k) for k in keys])
    query = exp.select(
        exp.Column(this=exp.Star(), table=ident("h")),
        exp.alias_(_row_number(keys), VERSION),
        exp.alias_(_over(exp.Count(this=exp.Star()), partition), VERSIONS),
        exp.alias_(change_kind(), CHANGE),
        exp.alias_(_over(exp.Lag(this=col(SOURCE_POS)), _window(keys)), PREV_POS),
    ).from_(exp.alias_(table(names.history, names.schema), "h", table=True))
    return ViewSpec(names.schema, names.current + VERSIONS_SUFFIX, query)


def _over(func: exp.Expression, window: exp.Window) -> exp.Window:
    window = window.copy()
    window.set("this", func)
    return window


def _row_number(keys: Sequence[str]) -> exp.Window:
    return _over(exp.RowNumber(), _window(keys))


def changes_view(
    names: TableNames, keys: Sequence[str], columns: Sequence[str], text_type: str
) -> ViewSpec:
    """`<table>_changes`: one row per (version, column whose value differs from the version before).

    A delete (and a truncate) lists the values it removed, an insert or snapshot row the values it
    brought; `old_value` / `new_value` are text (`text_type`, the warehouse's text type) so columns
    of every type share them.
    """
    values = [c for c in columns if c not in keys]
    prev = {c: f"_cdc_prev__{c}" for c in values}
    inner = exp.select(
        *(col(k) for k in keys),
        col(VALID_FROM),
        col(OP),
        col(IS_DELETED),
        col(SOURCE_POS),
        *(col(c) for c in values),
        *(exp.alias_(_over(exp.Lag(this=col(c)), _window(keys)), prev[c]) for c in values),
        exp.alias_(_over(exp.Lag(this=col(SOURCE_POS)), _window(keys)), PREV_POS),
    ).from_(table(names.history, names.schema))
    text = exp.DataType.build(text_type)
    branches: list[exp.Query] = []
    for c in values:
        is_first = exp.Is(this=col(PREV_POS), expression=exp.null())
        deleted = col(IS_DELETED)
        old = exp.Case(
            ifs=[exp.If(this=is_first.copy(), true=exp.null())],
            default=exp.cast(col(prev[c]), text.copy()),
        )
        new = exp.Case(
            ifs=[exp.If(this=deleted.copy(), true=exp.null())],
            default=exp.cast(col(c), text.copy()),
        )
        differs = exp.or_(
            is_first,
            deleted,
            exp.NullSafeNEQ(this=col(c), expression=col(prev[c])),
        )
        branches.append(
            exp.select(
                *(col(k) for k in keys),
                col(VALID_FROM),
                col(OP),
                exp.alias_(change_kind(), CHANGE),
                exp.alias_(exp.Literal.string(c), "column_name"),
                exp.alias_(old, "old_value"),
                exp.alias_(new, "new_value"),
            )
            .from_("_cdc_steps")
            .where(differs)
        )
    if not branches:  # a key-only table: its changes are its versions
        branches.append(
            exp.select(
                *(col(k) for k in keys),
                col(VALID_FROM),
                col(OP),
                exp.alias_(change_kind(), CHANGE),
            ).from_("_cdc_steps")
        )
    body: exp.Query = branches[0]
    for branch in branches[1:]:
        body = exp.union(body, branch, distinct=False)
    query = body.with_("_cdc_steps", as_=inner)
    return ViewSpec(names.schema, names.current + CHANGES_SUFFIX, query)
