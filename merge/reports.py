"""Read-only queries over the control schema for lag reports and the dashboard (sqlglot trees).

They never write, so running them twice is trivially idempotent; `merge/` still opens no connection.
"""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from merge import control, sqltree


def _since(column: str, since: dt.datetime) -> exp.Expression:
    return exp.GTE(
        this=sqltree.col(column),
        expression=exp.cast(exp.Literal.string(since.isoformat()), "TIMESTAMPTZ"),
    )


def batches_since(since: dt.datetime) -> exp.Select:
    """Per-table batch rows committed at or after `since`, oldest first.

    >>> from connectors.warehouses.duckdb.dialect import DuckDBDialect
    >>> sql = DuckDBDialect().render(batches_since(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    >>> sql.startswith('SELECT "source", "table_name", "events"')
    True
    """
    columns = [
        "source",
        "table_name",
        "events",
        "lag_p50_ms",
        "lag_p95_ms",
        "lag_p99_ms",
        "lag_max_ms",
        "committed_at",
    ]
    return (
        exp.select(*(sqltree.col(c) for c in columns))
        .from_(control.control_table(control.BATCHES))
        .where(_since("committed_at", since))
        .order_by(sqltree.col("committed_at"))
    )


def forced_releases_since(since: dt.datetime) -> exp.Select:
    """Per source, transactions applied without consistency at or after `since`, and the last time."""
    return (
        exp.select(
            sqltree.col("source"),
            exp.Count(this=exp.Star()),
            exp.Max(this=sqltree.col("released_at")),
        )
        .from_(control.control_table(control.FORCED))
        .where(_since("released_at", since))
        .group_by(sqltree.col("source"))
    )


def last_applied() -> exp.Select:
    """Per table: the latest source commit applied and the latest warehouse commit."""
    return (
        exp.select(
            sqltree.col("source"),
            sqltree.col("table_name"),
            exp.Max(this=sqltree.col("last_commit_time")).as_("last_commit_time"),
            exp.Max(this=sqltree.col("committed_at")).as_("last_batch_at"),
        )
        .from_(control.control_table(control.BATCHES))
        .group_by(sqltree.col("source"), sqltree.col("table_name"))
    )


def latest_checks() -> exp.Select:
    """The check rows of the most recent run that checked each table."""
    latest = (
        exp.select(
            sqltree.col("source"),
            sqltree.col("table_name"),
            exp.Max(this=sqltree.col("checked_at")).as_("checked_at"),
        )
        .from_(control.control_table(control.CHECKS))
        .group_by(sqltree.col("source"), sqltree.col("table_name"))
    )
    join_on = exp.and_(
        *(
            exp.EQ(this=sqltree.col(c, "c"), expression=sqltree.col(c, "l"))
            for c in ("source", "table_name", "checked_at")
        )
    )
    return (
        exp.select(
            *(
                sqltree.col(c, "c")
                for c in ("source", "table_name", "checked_at", "check_name", "ok", "observed")
            ),
            sqltree.col("detail", "c"),
        )
        .from_(control.control_table(control.CHECKS).as_("c"))
        .join(exp.Subquery(this=latest, alias=exp.TableAlias(this=sqltree.ident("l"))), on=join_on)
        .order_by(
            sqltree.col("source", "c"),
            sqltree.col("table_name", "c"),
            sqltree.col("check_name", "c"),
        )
    )
