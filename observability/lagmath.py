"""Pure lag arithmetic shared by the runner's metrics, `cdchub lag` and the dashboard.

The definitions (docs/observability.md, "What lag means"):

- **event lag** = warehouse commit time - source commit time of one applied change. Negative raw
  values (source clock ahead of the hub's) are clamped to 0 and counted as clock skew.
- **current lag** of a table, at time `now`:
  - records of its topic are still unread (`pending`): `now - last applied commit`, an upper bound
    (the warehouse lacks changes committed after that instant);
  - nothing unread and the source's Debezium heartbeat is known: `now - max(last applied commit,
    latest heartbeat)`. Debezium emits a heartbeat only after reading the source log up to then, so a
    caught-up consumer is as fresh as that heartbeat. A connector that stops also stops heartbeats, so
    this grows instead of reading "0": no events never means no lag.
  - nothing unread and no heartbeat seen: `now - last applied commit` (nothing proves freshness).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], pct: float) -> float:
    """The inclusive percentile `pct` (0-100) of non-empty `values`."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    if pct >= 100:
        return ordered[-1]
    return statistics.quantiles(ordered, n=100, method="inclusive")[max(0, int(pct) - 1)]


def distribution(values: Sequence[float]) -> dict[str, float] | None:
    """min/p50/p95/p99/max of `values`, None when empty."""
    if not values:
        return None
    return {
        "min": min(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
    }


@dataclass(frozen=True)
class CurrentLag:
    """The current lag of one table and which rule produced it."""

    seconds: float | None
    basis: str  # "behind" | "heartbeat" | "last-commit" | "unknown"


def current_lag(
    now: float, last_commit: float | None, pending: bool, heartbeat: float | None
) -> CurrentLag:
    """Current lag in seconds (all arguments are Unix times in seconds), never negative."""
    if pending:
        if last_commit is None:
            return CurrentLag(None, "unknown")
        return CurrentLag(max(0.0, now - last_commit), "behind")
    if heartbeat is not None:
        fresh_as_of = max(heartbeat, last_commit) if last_commit is not None else heartbeat
        return CurrentLag(max(0.0, now - fresh_as_of), "heartbeat")
    if last_commit is None:
        return CurrentLag(None, "unknown")
    return CurrentLag(max(0.0, now - last_commit), "last-commit")
