"""`cdchub demo`: the whole path once, end to end, with a summary a person (or a script) can read.

stack up → demo schemas → connectors → workload (while the consumer runs, so lag is real) → run until
caught up → verify → summary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from cdc_consumers.runner import Runner
from connectors.warehouses import open_session
from core.config import HubConfig
from core.errors import CdcHubError
from core.results import RunResult
from observability.lagmath import distribution
from ops.verify import verify_all

Progress = Callable[[str], None]


def _percentiles(values: list[float]) -> dict[str, float | None]:
    stats = distribution(values)
    return {k: None if stats is None else round(stats[k], 1) for k in ("p50", "p95", "p99", "max")}


def run_demo(
    config: HubConfig,
    *,
    events: int = 3000,
    rate: float | None = 400.0,
    seed: int = 42,
    idle_seconds: float = 5.0,
    progress: Progress = print,
) -> dict[str, Any]:
    """Run the demo and return its summary (see `describe`)."""
    from connectors.service import apply_connectors
    from dbschemas.loader import load_demo_schemas
    from dbschemas.workload import run_workload
    from infrastructure.stack.layout import StackLayout
    from infrastructure.stack.service import LocalStack

    started = time.monotonic()
    layout = StackLayout(config)
    progress("demo: starting the local stack")
    LocalStack(config).up(progress=progress)
    progress("demo: loading the demo schemas")
    load_demo_schemas(layout, list(config.sources), progress=progress)
    progress("demo: registering the Debezium connectors")
    apply_connectors(config, progress=progress)

    session = open_session(config)
    try:
        runner = Runner(config, session, progress=progress)
        outcome: dict[str, Any] = {}

        def consume() -> None:
            try:
                outcome["result"] = runner.run(handle_signals=False)
            except BaseException as exc:  # surfaced in the main thread below
                outcome["error"] = exc

        thread = threading.Thread(target=consume, name="cdchub-run", daemon=True)
        thread.start()
        progress(f"demo: workload of {events} row changes at {rate or 'max'}/s while consuming")
        workload = run_workload(
            layout,
            list(config.sources),
            rate=rate,
            duration=None,
            events=events,
            seed=seed,
            progress=progress,
        )
        # Let the consumer drain the tail, then stop it; then one more pass until idle.
        runner.request_stop()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        first: RunResult = outcome["result"]
        # The drain is bounded: idle time, plus the stall timeout of a transaction that never
        # completes, plus room for Debezium to deliver the workload's tail on a loaded machine.
        bound = idle_seconds + config.kafka.transaction_timeout_s + 120
        progress(f"demo: draining until idle for {idle_seconds:.0f}s (at most {bound:.0f}s)")
        tail = runner.run(until_idle=idle_seconds, max_seconds=bound, handle_signals=False)
        if tail.stopped_by != "idle":
            waiting = "; ".join(tail.waiting) or "records still arriving"
            raise CdcHubError(
                f"demo: the drain did not go idle within {bound:.0f}s; still waiting for: {waiting}"
            )
        progress("demo: verifying every table against its source")
        report = verify_all(session, config)
    finally:
        session.close()

    lags = first.lags_ms + tail.lags_ms
    return {
        "ok": bool(report["ok"]),
        "events_applied": first.events + tail.events,
        "versions_written": first.versions + tail.versions,
        "batches": first.batches + tail.batches,
        "workload": {
            "changes": getattr(workload, "changes", None),
            "transactions": getattr(workload, "transactions", None),
        },
        "tables": [
            {
                "source": t["source"],
                "table": t["table"],
                "warehouse_table": t["warehouse_table"],
                "rows": t["warehouse_rows"],
                "ok": t["ok"],
            }
            for t in report["tables"]
        ],
        "lag_ms": _percentiles(lags),
        "lag_events": len(lags),
        "warehouse": {"kind": config.warehouse.kind, "path": config.warehouse.location},
        "elapsed_s": round(time.monotonic() - started, 1),
        "verify": report,
    }


def describe(summary: dict[str, Any]) -> str:
    """The human summary printed at the end of `cdchub demo`."""
    lag = summary["lag_ms"]
    lines = [
        "",
        f"cdchub demo: {'OK' if summary['ok'] else 'FAILED'} in {summary['elapsed_s']}s",
        f"  events applied: {summary['events_applied']} "
        f"({summary['versions_written']} history versions, {summary['batches']} batches)",
        f"  replication lag, source commit -> warehouse commit, over {summary['lag_events']} "
        f"streamed events: p50 {lag['p50']} ms, p95 {lag['p95']} ms, p99 {lag['p99']} ms",
        "  tables:",
    ]
    for t in summary["tables"]:
        mark = "ok" if t["ok"] else "MISMATCH"
        lines.append(
            f"    {t['source']}.{t['table']:28} -> {t['warehouse_table']:28} "
            f"{'-' if t['rows'] is None else t['rows']:>6} rows  {mark}"
        )
    path = summary["warehouse"]["path"]
    lines.append(f"  warehouse: {path}")
    if summary["warehouse"]["kind"] == "duckdb":  # the one-liner below opens a DuckDB file
        lines.append(
            '  query it:  .venv/bin/python -c "import duckdb; c = duckdb.connect('
            f"'{path}', read_only=True); print(c.sql('SELECT * FROM shop.orders_history "
            "ORDER BY order_id, _cdc_source_pos LIMIT 10'))\""
        )
    return "\n".join(lines)
