"""`cdchub connectors apply|status`: register every configured source's connector and report state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connectors.connect_client import ConnectClient
from connectors.debezium import connector_config, connector_name
from connectors.preflight import check_source
from core.config import HubConfig, SourceConfig
from core.errors import ConnectorError

Progress = Callable[[str], None]


def apply_connectors(
    config: HubConfig, progress: Progress = print, wait_seconds: float = 120.0
) -> list[dict[str, Any]]:
    """Create or update one connector per source, then wait until each runs.

    Raises:
        ConnectorError: a source fails its preflight, Connect refuses a config, or a task fails
            (the message carries the task's trace summary).
    """
    client = ConnectClient(config.connect.url)
    try:
        for source in config.sources:
            for note in check_source(source, config.warehouse.kind):
                progress(f"note: {note}")
            name = connector_name(source)
            created = client.put_config(name, connector_config(source, config))
            progress(f"connector {name}: {'created' if created else 'updated'}")
        deadline = time.monotonic() + wait_seconds
        for source in config.sources:
            _wait_running(client, source, deadline, progress)
        return connector_status(config, client)
    finally:
        client.close()


def _wait_running(
    client: ConnectClient, source: SourceConfig, deadline: float, progress: Progress
) -> None:
    name = connector_name(source)
    while True:
        status = client.status(name)
        state, tasks = _states(status)
        failed = [t for t in (status or {}).get("tasks", []) if t.get("state") == "FAILED"]
        if failed or state == "FAILED":
            trace = (failed[0] if failed else status or {}).get("trace", "") or ""
            summary = trace.strip().splitlines()[0] if trace else "no trace"
            raise ConnectorError(f"connector failed: {summary}", connector=name)
        if state == "RUNNING" and tasks and all(t == "RUNNING" for t in tasks):
            progress(f"connector {name}: RUNNING")
            return
        if time.monotonic() > deadline:
            raise ConnectorError(
                f"connector not running in time (state {state}, tasks {tasks})", connector=name
            )
        time.sleep(0.5)


def _states(status: dict[str, Any] | None) -> tuple[str, list[str]]:
    if not status:
        return "MISSING", []
    return status["connector"]["state"], [t["state"] for t in status.get("tasks", [])]


def connector_status(
    config: HubConfig, client: ConnectClient | None = None
) -> list[dict[str, Any]]:
    """One entry per configured source: connector name, state and task states."""
    own = client is None
    client = client or ConnectClient(config.connect.url)
    try:
        report = []
        for source in config.sources:
            name = connector_name(source)
            status = client.status(name)
            state, tasks = _states(status)
            entry: dict[str, Any] = {
                "source": source.name,
                "kind": source.kind,
                "connector": name,
                "state": state,
                "tasks": tasks,
            }
            traces = [t.get("trace") for t in (status or {}).get("tasks", []) if t.get("trace")]
            if traces:
                entry["error"] = traces[0].strip().splitlines()[0]
            report.append(entry)
        return report
    finally:
        if own:
            client.close()
