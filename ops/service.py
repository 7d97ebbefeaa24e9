"""Service functions the CLI calls: instrument a run, print lag, serve the dashboard."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from core.config import HubConfig
from core.signals import interrupted_by
from merge.session import WarehouseSession
from observability.telemetry import build_telemetry
from ops.access import (
    CursorSession,
    QueryTicket,
    answer_query,
    lag_report,
    new_token,
    token_matches,
)
from ops.dashboard import DashboardServer
from ops.lag_report import build_report
from ops.tracing import RunInstrumentation

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@contextmanager
def instrumented(
    config: HubConfig,
    session: WarehouseSession,
    progress: Progress = print,
    replay: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    dlq: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Iterator[RunInstrumentation]:
    """Telemetry for one `cdchub run`: exporters, and the dashboard served beside the writer.

    `replay` and `dlq` answer the CLI's requests on the run's endpoint (`cdchub replay --execute`
    and `rebuild --execute` while this run holds the lease, on every warehouse; `cdchub dlq
    retry|skip` while it holds the DuckDB file).
    """
    telemetry = build_telemetry(config.observability)
    if telemetry.prometheus_address:
        host, port = telemetry.prometheus_address
        progress(f"metrics: http://{host}:{port}/metrics")
    instrumentation = RunInstrumentation(telemetry, config)
    server = None
    ticket_path = QueryTicket.path(config)
    ticket: QueryTicket | None = None
    dash = config.observability.dashboard
    cursor = getattr(session, "cursor", None)  # DuckDB: a reader beside the writer, same process
    if dash.serve_in_run:
        token = new_token()
        report, query = _readers(config, session, cursor)
        try:
            server = DashboardServer(
                report,
                dash.host,
                dash.port,
                dash.window_s,
                query=query,
                authorized=lambda header: token_matches(token, header),
                replay=replay,
                dlq=dlq,
            ).start()
            progress(f"dashboard: {server.url}")
            # Other CLI commands hand work (replay, dead-letter decisions) to this run, the single
            # writer, and on DuckDB read the file through it.
            ticket = QueryTicket(
                server.url.rstrip("/"), token, os.getpid(), str(getattr(session, "path", ""))
            )
            ticket.write(ticket_path)
        except OSError as exc:  # a taken port must not stop replication
            log.warning("dashboard not served on %s:%s: %s", dash.host, dash.port, exc)
    try:
        yield instrumentation
    finally:
        if ticket is not None and QueryTicket.read(ticket_path) == ticket:
            ticket_path.unlink(missing_ok=True)
        if server is not None:
            server.stop()
        instrumentation.close()
        telemetry.shutdown()


def _readers(
    config: HubConfig, session: WarehouseSession, cursor: Callable[[], Any] | None
) -> tuple[Callable[[float], dict[str, Any]], Callable[[str], tuple[bytes, list[str]]] | None]:
    """The run's lag report and (DuckDB only) its query answerer."""
    if cursor is None:
        # PostgreSQL/Snowflake admit other readers: each report opens its own read-only session,
        # and the CLI's reading commands connect themselves (no query endpoint needed).
        return (lambda window: lag_report(config, window)), None
    reader = CursorSession(cursor, session.dialect)

    def report(window: float) -> dict[str, Any]:
        return build_report(reader, config, window_s=window)  # type: ignore[arg-type]

    def query(sql: str) -> tuple[bytes, list[str]]:
        # DuckDB lets no other process open the file the run holds: the CLI reads through here.
        return answer_query(cursor, sql)

    return report, query


def serve_dashboard(config: HubConfig, port: int | None, progress: Progress = print) -> None:
    """`cdchub dashboard`: serve until interrupted."""
    dash = config.observability.dashboard
    server = DashboardServer(
        lambda window: lag_report(config, window),
        dash.host,
        dash.port if port is None else port,
        dash.window_s,
    )
    progress(f"dashboard: {server.url} (Ctrl-C stops)")
    # SIGINT and SIGTERM stop it, as they stop `cdchub run`.
    try:
        with interrupted_by(signal.SIGINT, signal.SIGTERM):
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()


def _fmt(value: Any, unit: str = "", scale: float = 1.0) -> str:
    return "-" if value is None else f"{value / scale:.1f}{unit}"


def describe_lag(report: dict[str, Any]) -> str:
    """The human table printed by `cdchub lag`."""
    lines = [
        f"{'table':38} {'now':>8} {'basis':11} {'p50':>8} {'p95':>8} {'p99':>8} "
        f"{'kafka lag':>9}  last applied commit"
    ]
    for t in report["tables"]:
        lag = t["lag_ms"]
        now = "STOPPED" if t.get("state") == "stopped" else _fmt(t["current_lag_s"], "s")
        lines.append(
            f"{t['source'] + '.' + t['table']:38} {now:>8} "
            f"{t['current_lag_basis']:11} {_fmt(lag['p50'], 's', 1000):>8} "
            f"{_fmt(lag['p95'], 's', 1000):>8} {_fmt(lag['p99'], 's', 1000):>8} "
            f"{'-' if t['consumer_lag_messages'] is None else t['consumer_lag_messages']:>9}  "
            f"{t['last_applied_commit'] or '-'}"
        )
    for t in report["tables"]:
        stop = t.get("stopped")
        if stop:
            lines.append(
                f"STOPPED {t['source']}.{t['table']}: column {stop['column']!r} changed type from "
                f"{stop['old_type']} to {stop['new_type']} (since {stop['stopped_at']}); its "
                f"changes are held. To resume: {stop['resume']}"
            )
    heartbeats = ", ".join(f"{s} {a:.1f}s ago" for s, a in report["heartbeat_age_s"].items())
    lines.append(
        f"window {report['window_s']:.0f}s; heartbeats: {heartbeats or 'none seen'}; "
        f"DLQ {report['dlq_events']} ({report.get('dlq_open', 0)} open: `cdchub dlq list`); "
        f"transactions forced without consistency {report.get('forced_releases', 0)}"
        + (f"; {report['kafka_error']}" if report["kafka_error"] else "")
    )
    return "\n".join(lines)
