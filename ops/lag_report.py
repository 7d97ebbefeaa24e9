"""The lag report behind `cdchub lag` and the dashboard: per table, from the warehouse and Kafka.

Warehouse side (`_cdchub.batches`, `_cdchub.checks`): lag percentiles over a window, throughput, the
last applied source commit, the latest check results. Kafka side: consumer lag from the group's
committed offsets vs end offsets, and each source's latest Debezium heartbeat, which turn "no events"
into an honest current lag (see `observability.lagmath`).

Window percentiles are event-weighted percentiles of the per-batch percentiles (the per-event lags
are not stored): exact when a window holds one batch, an approximation otherwise.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

from connectors.kafka_probe import KafkaProbe
from core.config import HubConfig
from merge import control, dead_letters, reports
from merge.naming import CONTROL_SCHEMA
from merge.runstate import stopped_tables
from merge.session import WarehouseSession
from observability.lagmath import current_lag
from ops.catalog import replicated_tables

log = logging.getLogger(__name__)
SERIES_POINTS = 60


def weighted_percentile(pairs: Sequence[tuple[float, int]], pct: float) -> float | None:
    """The value below which `pct`% of the total weight lies (pairs are (value, weight))."""
    items = sorted((v, w) for v, w in pairs if v is not None and w > 0)
    total = sum(w for _, w in items)
    if not total:
        return None
    threshold = pct / 100 * total
    running = 0
    for value, weight in items:
        running += weight
        if running >= threshold:
            return value
    return items[-1][0]


def _iso(value: Any) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if isinstance(value, dt.datetime) else None


def _kafka_side(config: HubConfig) -> tuple[dict[str, int], dict[str, float], str | None]:
    """Consumer lag per topic and heartbeat time per source; an error string when Kafka is away."""
    try:
        probe = KafkaProbe(config.kafka.bootstrap_servers, group_id=config.kafka.group_id)
    except Exception as exc:  # a report without Kafka is still useful
        return {}, {}, f"kafka unreachable: {exc}"
    try:
        names = [s.name for s in config.sources]
        lag: dict[str, int] = {}
        for part in probe.group_lag(probe.data_partitions(names)):
            lag[part.topic] = lag.get(part.topic, 0) + part.messages
        return lag, probe.heartbeat_times(names), None
    except Exception as exc:
        return {}, {}, f"kafka probe failed: {exc}"
    finally:
        probe.close()


def _series(rows: list[tuple[Any, ...]], start: float, bucket_s: float) -> list[dict[str, Any]]:
    buckets: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        buckets.setdefault(int((row[7].timestamp() - start) // bucket_s), []).append(row)
    out = []
    for index in sorted(buckets):
        group = buckets[index]
        events = sum(int(r[2]) for r in group)
        point: dict[str, Any] = {
            "t": start + (index + 0.5) * bucket_s,
            "events": events,
            "eps": round(events / bucket_s, 2),
        }
        for name, col in (("p50", 3), ("p95", 4), ("p99", 5)):
            point[name] = weighted_percentile([(r[col], int(r[2])) for r in group], float(name[1:]))
        out.append(point)
    return out


def build_report(
    session: WarehouseSession,
    config: HubConfig,
    *,
    window_s: float = 900.0,
    with_kafka: bool = True,
    now: float | None = None,
) -> dict[str, Any]:
    """The lag report: one entry per replicated table (see docs/observability.md for fields)."""
    now = time.time() if now is None else now
    since = dt.datetime.fromtimestamp(now - window_s, dt.UTC)
    tables = replicated_tables(session)
    has_batches = session.table_columns(CONTROL_SCHEMA, control.BATCHES) is not None
    has_checks = session.table_columns(CONTROL_SCHEMA, control.CHECKS) is not None
    letter_counts = dead_letters.counts(session, config.kafka.group_id)
    forced: dict[str, dict[str, Any]] = {}
    if session.table_columns(CONTROL_SCHEMA, control.FORCED) is not None:
        forced = {
            str(r[0]): {"count": int(r[1]), "last": _iso(r[2])}
            for r in session.query(reports.forced_releases_since(since))
        }
    rows = session.query(reports.batches_since(since)) if has_batches else []
    last = (
        {(r[0], r[1]): r[2:] for r in session.query(reports.last_applied())} if has_batches else {}
    )
    checks: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if has_checks:
        for r in session.query(reports.latest_checks()):
            checks.setdefault((r[0], r[1]), []).append(
                {"checked_at": _iso(r[2]), "check": r[3], "ok": bool(r[4]), "observed": r[5]}
                | {"detail": r[6]}
            )
    consumer_lag: dict[str, int] = {}
    heartbeats: dict[str, float] = {}
    kafka_error: str | None = None
    if with_kafka:
        consumer_lag, heartbeats, kafka_error = _kafka_side(config)
    # Tables stopped by an incompatible type change (stored by the run that stopped them).
    stops = {
        (s.source, f"{s.source_schema}.{s.source_table}"): s
        for s in stopped_tables(session, config.kafka.group_id)
    }
    bucket_s = max(5.0, window_s / SERIES_POINTS)
    entries = []
    for t in tables:
        name = f"{t.source_schema}.{t.source_table}"
        topic = f"{t.source}.{name}"
        mine = [r for r in rows if r[0] == t.source and r[1] == name]
        events = sum(int(r[2]) for r in mine)
        last_commit, last_batch = last.get((t.source, name), (None, None))
        pending = consumer_lag.get(topic)
        commit_s = last_commit.timestamp() if last_commit else None
        lag = current_lag(now, commit_s, bool(pending), heartbeats.get(t.source))
        stop = stops.get((t.source, name))
        lag_s, basis = lag.seconds, lag.basis
        if stop is not None:
            # Heartbeats say nothing of a stopped table: it is as old as its last applied commit.
            lag_s, basis = (now - commit_s if commit_s else None), "stopped"
        table_checks = checks.get((t.source, name), [])
        entries.append(
            {
                "source": t.source,
                "table": name,
                "warehouse_table": f"{t.warehouse_schema}.{t.current_table}",
                "batches": len(mine),
                "events": events,
                "throughput_eps": round(events / window_s, 3),
                "lag_ms": {
                    p: weighted_percentile([(r[c], int(r[2])) for r in mine], float(p[1:]))
                    for p, c in (("p50", 3), ("p95", 4), ("p99", 5))
                }
                | {"max": max((r[6] for r in mine if r[6] is not None), default=None)},
                "last_applied_commit": _iso(last_commit),
                "last_batch_at": _iso(last_batch),
                "since_last_commit_s": round(now - commit_s, 3) if commit_s else None,
                "current_lag_s": round(lag_s, 3) if lag_s is not None else None,
                "current_lag_basis": basis,
                "state": "stopped" if stop is not None else "flowing",
                "stopped": stop.to_json() if stop is not None else None,
                "consumer_lag_messages": pending,
                "slo_s": config.observability.slo_for(f"{t.source}.{name}"),
                "checks": table_checks,
                "checks_ok": all(c["ok"] for c in table_checks) if table_checks else None,
                "series": _series(mine, now - window_s, bucket_s),
            }
        )
    return {
        "generated_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(),
        "window_s": window_s,
        "consumer_group": config.kafka.group_id,
        # Events in the dead-letter store: all, and those still waiting for a person (open).
        "dlq_events": sum(letter_counts.values()),
        "dlq_open": letter_counts.get(dead_letters.OPEN, 0),
        # Transactions applied without transaction consistency in the window (stalled or too big).
        "forced_releases": sum(f["count"] for f in forced.values()),
        "forced_releases_by_source": forced,
        "heartbeat_age_s": {s: round(max(0.0, now - t), 3) for s, t in heartbeats.items()},
        "kafka_error": kafka_error,
        "stopped_tables": [s.name for s in stops.values()],
        "tables": entries,
    }
