"""As-of queries over history: the rows a source table held at an instant.

For an instant T, a version is the row's state at T when `_cdc_valid_from <= T < _cdc_valid_to` (an
open `_cdc_valid_to` means "still current") and it is not a delete. Validity intervals of a key never
overlap (see docs/scd2.md), so this yields at most one row per key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlglot
import sqlglot.errors
from sqlglot import exp

from core.errors import ConfigError
from merge.naming import IS_DELETED, VALID_FROM, VALID_TO, TableNames
from merge.sqltree import col, ident, table


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


# -- SQL over history: read-only user queries, rewritten to read a replicated table as of an instant --

# Statements a read-only query may contain anywhere in its tree (PostgreSQL allows DML inside a CTE,
# `SELECT … INTO` creates a table, so the top node alone proves nothing).
_WRITES: tuple[type[exp.Expression], ...] = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Into,
    exp.Command,
    exp.Copy,
    exp.Set,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Use,
    exp.Grant,
)


class QueryRefused(ConfigError):
    """A user query that is not one read-only SELECT (or WITH … SELECT), or that does not parse."""


def read_only_query(sql: str, dialect: str) -> exp.Query:
    """Parse `sql` (written in sqlglot dialect `dialect`) and accept only one read-only query.

    Raises:
        QueryRefused: it does not parse, holds several statements, or is not a SELECT / WITH … SELECT
            (or a UNION / INTERSECT / EXCEPT of them) free of any writing clause.
    """
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = str(exc).splitlines()[0]
        raise QueryRefused(f"the query does not parse as {dialect} SQL: {first}") from exc
    if len(statements) != 1:
        raise QueryRefused(
            f"give exactly one query (found {len(statements)} statements); `cdchub sql` runs one "
            "read-only SELECT"
        )
    (query,) = statements
    if not isinstance(query, exp.Query):
        raise QueryRefused(
            f"only SELECT or WITH … SELECT queries are allowed, not {query.key.upper()}: "
            "`cdchub sql` never writes to the warehouse"
        )
    for node in query.walk():
        if isinstance(node, _WRITES):
            raise QueryRefused(
                f"the query contains {node.key.upper()}, which writes: `cdchub sql` is read-only"
            )
    return query


@dataclass(frozen=True)
class AsOfTarget:
    """A replicated table that `rewrite_as_of` may redirect: its names and its current columns."""

    names: TableNames
    columns: tuple[str, ...]


def rewrite_as_of(
    query: exp.Query, targets: Sequence[AsOfTarget], at: dt.datetime
) -> tuple[exp.Query, list[TableNames]]:
    """Make every reference to a replicated current table read that table's state at `at`.

    Each `schema.table` (optionally catalog-qualified) naming a replicated current table becomes
    `(SELECT <its columns> FROM <history> WHERE valid at `at` AND NOT deleted) AS <alias>`, built by
    `as_of`, so the rest of the query (joins, column references through the table's name or alias,
    `*`) reads the same columns it would read from the current table. History tables, the control
    schema and anything else are left alone; so is a bare `table` (unqualified names resolve to the
    warehouse's default schema, where no replicated table lives).

    Returns the rewritten copy and the tables it redirected.
    """
    by_name = {(t.names.schema.lower(), t.names.current.lower()): t for t in targets}
    rewritten = query.copy()
    hits: list[TableNames] = []
    for ref in list(rewritten.find_all(exp.Table)):
        schema, name = ref.db, ref.name
        if not schema or not name:
            continue
        target = by_name.get((schema.lower(), name.lower()))
        if target is None:
            continue
        inner = as_of(target.names, target.columns, at)
        source = inner.args["from_"].this
        if ref.catalog:  # keep the database the user named (Snowflake, attached DuckDB files)
            source.set("catalog", ref.args["catalog"].copy())
        alias = ref.alias or name
        ref.replace(exp.Subquery(this=inner, alias=exp.TableAlias(this=ident(alias))))
        hits.append(target.names)
    # `shop.orders.status` names the table by its full path; the subquery is named `orders` only.
    for column in rewritten.find_all(exp.Column):
        if column.args.get("db") and (column.text("db").lower(), column.table.lower()) in {
            (h.schema.lower(), h.current.lower()) for h in hits
        }:
            column.set("db", None)
            column.set("catalog", None)
    return rewritten, hits
