"""Data-quality results in the warehouse (`_cdchub.checks`), and the checks `cdchub run` schedules.

`cdchub verify` (ops/verify.py) decides; this module turns its report into one row per check per
table so the dashboard and SQL users can see the latest verdicts and their history:

- `reconciliation`: row counts and values vs the source (observed = missing + unexpected + different
  keys + |row count difference|);
- `history.current`: keys without exactly one current version;
- `history.links`: versions whose validity does not meet the next one's;
- `schema_drift`: source columns missing in the warehouse, and columns whose warehouse type no
  longer fits the source's (ops/schema_drift.py; observed = how many columns);
- `range_checksum` (with `verify --ranges N`): key ranges whose count or checksum differ
  (ops/range_checksum.py; observed = how many ranges).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from typing import Any

from core.config import HubConfig
from merge import control, sqltree
from merge.session import WarehouseSession
from ops.schema_drift import TableDrift, schema_drift
from ops.verify import verify_all

log = logging.getLogger(__name__)


def check_rows(
    report: dict[str, Any],
    run_id: str,
    drift: list[TableDrift] | None = None,
    ranges: list[dict[str, Any]] | None = None,
) -> list[tuple[Any, ...]]:
    """`_cdchub.checks` rows (see `control.CHECKS_COLUMNS`) for one verify report and its drift."""
    checked_at = dt.datetime.fromisoformat(report["checked_at"])
    drifts = {(d.source, d.table): d for d in drift or []}
    rows = []
    for t in report["tables"]:
        d = drifts.get((t["source"], t["table"]))
        missing = d.missing if d else t.get("missing_columns", [])
        mismatched = d.mismatched if d else []
        counts = t.get("missing_keys", 0) + t.get("unexpected_keys", 0) + t.get("different_rows", 0)
        # A table that could not be compared (its source is down) has no counts: None.
        rows_off = abs((t.get("source_rows") or 0) - (t.get("warehouse_rows") or 0))
        history = t.get("history", {})
        verdicts = [
            (
                "reconciliation",
                t["error"] is None and counts + rows_off == 0,
                counts + rows_off,
                {
                    "source_rows": t.get("source_rows"),
                    "warehouse_rows": t.get("warehouse_rows"),
                    "missing_keys": t.get("missing_keys"),
                    "unexpected_keys": t.get("unexpected_keys"),
                    "different_rows": t.get("different_rows"),
                    "error": t["error"],
                },
            ),
            (
                "history.current",
                not history.get("keys_without_exactly_one_current"),
                history.get("keys_without_exactly_one_current", 0),
                {},
            ),
            (
                "history.links",
                not history.get("broken_validity_links"),
                history.get("broken_validity_links", 0),
                {},
            ),
            (
                "schema_drift",
                not (missing or mismatched or (d and d.error)),
                len(missing) + len(mismatched),
                {
                    "missing_in_warehouse": missing,
                    "type_mismatch": mismatched,
                    "error": d.error if d else None,
                },
            ),
        ]
        for r in ranges or []:
            if (r["source"], r["table"]) == (t["source"], t["table"]):
                verdicts.append(
                    (
                        "range_checksum",
                        not (r["mismatched"] or r["error"]),
                        len(r["mismatched"]),
                        {
                            "ranges": r["ranges"],
                            "mismatched": r["mismatched"][:20],
                            "error": r["error"],
                        },
                    )
                )
        for name, ok, observed, detail in verdicts:
            rows.append(
                (
                    run_id,
                    checked_at,
                    t["source"],
                    t["table"],
                    name,
                    bool(ok),
                    float(observed),
                    json.dumps(detail, default=str),
                )
            )
    return rows


def drift_json(drift: list[TableDrift]) -> list[dict[str, Any]]:
    """The `schema_drift` entries added to `verify --json`."""
    return [
        {
            "source": d.source,
            "table": d.table,
            "ok": d.ok,
            "missing_in_warehouse": d.missing,
            "type_mismatch": d.mismatched,
            "error": d.error,
        }
        for d in drift
    ]


def store_checks(
    session: WarehouseSession,
    report: dict[str, Any],
    drift: list[TableDrift] | None = None,
    ranges: list[dict[str, Any]] | None = None,
) -> str:
    """Append a verify report (its schema drift, its ranges) to `_cdchub.checks`, atomically."""
    run_id = uuid.uuid4().hex
    rows = check_rows(report, run_id, drift, ranges)
    columns = [c for c, _ in control.CHECKS_COLUMNS]
    with session.transaction():
        for statement in control.control_ddl(session.dialect):
            session.execute(statement)
        session.executemany(
            sqltree.insert_rows(control.control_table(control.CHECKS), columns), rows
        )
    return run_id


class ScheduledChecks:
    """Runs `verify` every `checks.interval_seconds` inside `cdchub run`, between batches.

    The `run` command hands it to the runner as its between-batches hook, so the checks run
    whether telemetry is on or off, on the runner's own session (DuckDB admits no second writer).
    """

    def __init__(self, config: HubConfig, clock: Any = time.monotonic) -> None:
        self.config = config
        self.interval = config.checks.interval_seconds
        self.clock = clock
        self._next = clock() + (self.interval or 0)

    def maybe_run(self, session: WarehouseSession) -> dict[str, Any] | None:
        """Verify and store when due (never when the interval is unset); the report or None."""
        if self.interval is None or self.clock() < self._next:
            return None
        self._next = self.clock() + self.interval
        report = verify_all(session, self.config)
        drift = schema_drift(session, self.config)
        store_checks(session, report, drift)
        for d in drift:
            if not d.ok:
                log.warning("schema drift in %s.%s: %s", d.source, d.table, drift_json([d])[0])
        if not report["ok"]:
            failed = [f"{t['source']}.{t['table']}" for t in report["tables"] if not t["ok"]]
            log.warning("scheduled checks failed for %s", ", ".join(failed))
        return report

    def __call__(self, session: WarehouseSession) -> None:
        """The runner's between-batches hook: run when due; a failure is logged, never raised."""
        try:
            self.maybe_run(session)
        except Exception as exc:  # a failing check run must not stop replication
            log.warning("scheduled checks could not run: %s", exc)
