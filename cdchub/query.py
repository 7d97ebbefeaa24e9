"""`cdchub sql`: one read-only query on the warehouse, optionally as of an instant of the source.

The query is parsed with sqlglot in the warehouse's dialect and refused unless it is one SELECT (see
`merge.asof.read_only_query`). With an instant, every replicated current table it names is rewritten
to read that table's history as of the instant (`merge.asof.rewrite_as_of`), so the same query text
answers "now" and "then" on DuckDB, PostgreSQL and Snowflake.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlglot import exp
from sqlglot.errors import ErrorLevel

from core.errors import ConfigError
from merge.asof import AsOfTarget, read_only_query, rewrite_as_of
from merge.dialect import Dialect
from merge.naming import VALID_FROM, TableNames
from merge.sqltree import col, table
from ops.catalog import ReplicatedTable, replicated_tables

Warn = Callable[[str], None]


class QueryFailed(ConfigError):
    """The warehouse refused or failed the user's query (bad column, type error, …)."""


class ReadSession(Protocol):
    """What `cdchub sql` needs of a warehouse session (local or a running hub's endpoint)."""

    dialect: Dialect

    def query(self, statement: exp.Expression) -> list[tuple[Any, ...]]: ...

    def table_columns(self, schema: str, table: str) -> list[str] | None: ...

    def read(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]: ...


@dataclass(frozen=True)
class QueryResult:
    """The columns and rows of one query, and the SQL that produced them."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    sql: str


def render_user_query(tree: exp.Expr, dialect: Dialect) -> str:
    """SQL text for a (rewritten) user query.

    Snowflake folds unquoted names to upper case while the hub creates its tables with quoted
    lower-case names (the source's), so there every identifier is quoted; elsewhere the user's
    spelling is kept and only the names the rewrite added are quoted.
    """
    return tree.sql(
        dialect=dialect.SQLGLOT_DIALECT,
        identify=dialect.FOLDS_UNQUOTED_UPPER,
        unsupported_level=ErrorLevel.RAISE,
    )


def history_start(session: ReadSession, names: TableNames) -> dt.datetime | None:
    """The earliest `_cdc_valid_from` of a history table (None when it is empty)."""
    query = exp.select(exp.Min(this=col(VALID_FROM))).from_(table(names.history, names.schema))
    value = session.query(query)[0][0]
    if value is None:
        return None
    if isinstance(value, str):  # some drivers return text for a bare aggregate
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def warn_before_history(
    session: ReadSession, tables: list[TableNames], at: dt.datetime, warn: Warn
) -> None:
    """Warn once per table whose history begins after `at` (it then reads as empty)."""
    when = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    for names in tables:
        start = history_start(session, names)
        if start is None:
            warn(f"warning: {names.schema}.{names.current} has no history yet; it reads as empty")
        elif when < start:
            warn(
                f"warning: {when.isoformat()} is before {names.schema}.{names.current}'s history "
                f"begins ({start.isoformat()}): it reads as empty then"
            )


def as_of_targets(session: ReadSession, tables: list[ReplicatedTable]) -> list[AsOfTarget]:
    """Each replicated table with the columns of its current table (what `SELECT *` shows)."""
    return [
        AsOfTarget(t.names, tuple(session.table_columns(t.warehouse_schema, t.current_table) or ()))
        for t in tables
    ]


def run_sql(
    session: ReadSession, sql: str, at: dt.datetime | None = None, warn: Warn = lambda _m: None
) -> QueryResult:
    """Run one read-only query; with `at`, read every replicated table as of that instant.

    Raises:
        QueryRefused: not a single read-only SELECT.
        QueryFailed: the warehouse failed the query.
    """
    tree = read_only_query(sql, session.dialect.SQLGLOT_DIALECT)
    if at is None:
        text = sql if not session.dialect.FOLDS_UNQUOTED_UPPER else None
        text = text or render_user_query(tree, session.dialect)
    else:
        targets = as_of_targets(session, replicated_tables(session))
        tree, hits = rewrite_as_of(tree, targets, at)
        if not hits:
            warn(
                "warning: the query names no replicated table as <schema>.<table>; --as-of "
                "changes nothing"
            )
        warn_before_history(session, list(dict.fromkeys(hits)), at, warn)
        text = render_user_query(tree, session.dialect)
    try:
        columns, rows = session.read(text)
    except ConfigError:
        raise
    except Exception as exc:  # driver errors differ per warehouse; the message is what matters
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise QueryFailed(f"the warehouse refused the query: {first}") from exc
    return QueryResult(columns, rows, text)
