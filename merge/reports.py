"""Read-only queries over the control schema for lag reports and the dashboard (sqlglot trees).

They never write, so running them twice is trivially idempotent; `merge/` still opens no connection.
"""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from merge import plan


def _since(column: str, since: dt.datetime) -> exp.Expression:
    return exp.GTE(
        this=plan.col(column),
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
        exp.select(*(plan.col(c) for c in columns))
        .from_(plan.control_table(plan.BATCHES))
        .where(_since("committed_at", since))
        .order_by(plan.col("committed_at"))
    )


def forced_releases_since(since: dt.datetime) -> exp.Select:
    """Per source, transactions applied without consistency at or after `since`, and the last time."""
    return (
        exp.select(
            plan.col("source"),
            exp.Count(this=exp.Star()),
            exp.Max(this=plan.col("released_at")),
        )
        .from_(plan.control_table(plan.FORCED))
        .where(_since("released_at", since))
        .group_by(plan.col("source"))
    )


def last_applied() -> exp.Select:
    """Per table: the latest source commit applied and the latest warehouse commit."""
    return (
        exp.select(
            plan.col("source"),
            plan.col("table_name"),
            exp.Max(this=plan.col("last_commit_time")).as_("last_commit_time"),
            exp.Max(this=plan.col("committed_at")).as_("last_batch_at"),
        )
        .from_(plan.control_table(plan.BATCHES))
        .group_by(plan.col("source"), plan.col("table_name"))
    )


def latest_checks() -> exp.Select:
    """The check rows of the most recent run that checked each table."""
    latest = (
        exp.select(
            plan.col("source"),
            plan.col("table_name"),
            exp.Max(this=plan.col("checked_at")).as_("checked_at"),
        )
        .from_(plan.control_table(plan.CHECKS))
        .group_by(plan.col("source"), plan.col("table_name"))
    )
    join_on = exp.and_(
        *(
            exp.EQ(this=plan.col(c, "c"), expression=plan.col(c, "l"))
            for c in ("source", "table_name", "checked_at")
        )
    )
    return (
        exp.select(
            *(
                plan.col(c, "c")
                for c in ("source", "table_name", "checked_at", "check_name", "ok", "observed")
            ),
            plan.col("detail", "c"),
        )
        .from_(plan.control_table(plan.CHECKS).as_("c"))
        .join(exp.Subquery(this=latest, alias=exp.TableAlias(this=plan.ident("l"))), on=join_on)
        .order_by(plan.col("source", "c"), plan.col("table_name", "c"), plan.col("check_name", "c"))
    )
