"""Source lifecycle: pause, resume, restart and delete connectors; what `apply` would send.

`delete --drop-slot` also drops the PostgreSQL replication slot. Without it, a deleted connector's
slot stays and keeps every WAL segment from its position on (the server's disk fills). A delete says
what it leaves behind on purpose: the Kafka topics, the warehouse schema with its current and history
tables, the publication and the heartbeat/signaling tables (an admin's objects).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import closing
from typing import Any

import psycopg

from connectors.connect_client import ConnectClient
from connectors.debezium import (
    connector_config,
    connector_name,
    heartbeat_topic,
    redacted,
    transaction_topic,
)
from connectors.heartbeat import heartbeat_table
from connectors.signals import notification_topic, signal_table
from connectors.sources import open_connection
from core.config import HubConfig, SourceConfig
from core.errors import CdcHubError, ConnectorError

Progress = Callable[[str], None]


def selected_sources(config: HubConfig, name: str | None) -> list[SourceConfig]:
    """The source named `name` (a ConfigError lists the known ones), or every source."""
    if name is not None:
        return [config.source(name)]
    if not config.sources:
        raise ConnectorError("no sources are configured (add them under `sources:`)")
    return list(config.sources)


def planned_configs(config: HubConfig, name: str | None = None) -> list[dict[str, Any]]:
    """The connector configs `connectors apply` would send, secrets masked (no network)."""
    return [
        {
            "source": s.name,
            "connector": connector_name(s),
            "config": redacted(connector_config(s, config, mask_secrets=True)),
        }
        for s in selected_sources(config, name)
    ]


_ACTIONS = {
    "pause": lambda c, n: c.pause(n),
    "resume": lambda c, n: c.resume(n),
    "restart": lambda c, n: c.restart(n, only_failed=False),
}


def control(
    config: HubConfig, action: str, name: str | None = None, progress: Progress = print
) -> list[dict[str, Any]]:
    """Pause, resume or restart the selected sources' connectors (and all their tasks).

    Raises:
        ConnectorError: a selected connector does not exist, or Connect refused.
    """
    client = ConnectClient(config.connect.url)
    try:
        results = []
        for source in selected_sources(config, name):
            connector = connector_name(source)
            if not _ACTIONS[action](client, connector):
                raise ConnectorError(
                    "no such connector; create it with `cdchub connectors apply`",
                    connector=connector,
                )
            progress(f"connector {connector}: {action} requested")
            results.append({"source": source.name, "connector": connector, "action": action})
        return results
    finally:
        client.close()


def delete(
    config: HubConfig,
    name: str | None = None,
    drop_slot: bool = False,
    progress: Progress = print,
    slot_wait_s: float = 30.0,
) -> list[dict[str, Any]]:
    """Delete the selected sources' connectors; with `drop_slot`, their replication slots too.

    Returns one report per source: what was removed and what is left (topics, warehouse tables…).
    """
    client = ConnectClient(config.connect.url)
    try:
        reports = []
        for source in selected_sources(config, name):
            connector = connector_name(source)
            report: dict[str, Any] = {"source": source.name, "connector": connector, "slot": None}
            if drop_slot and source.kind == "postgres":
                # Connect keeps a deleted connector's offsets; a connector created later under the
                # same name would resume from a position the dropped slot can no longer serve.
                existed = _reset_offsets(client, config, source, progress)
                report["offsets_reset"] = True
                client.delete(connector)
            else:
                existed = client.delete(connector)
            progress(f"connector {connector}: {'deleted' if existed else 'did not exist'}")
            report["connector_deleted"] = existed
            if source.kind == "postgres":
                report["slot"] = _slot(source, drop_slot, slot_wait_s, progress)
            report["left"] = _left_behind(config, source)
            reports.append(report)
        return reports
    finally:
        client.close()


def _reset_offsets(
    client: ConnectClient, config: HubConfig, source: SourceConfig, progress: Progress
) -> bool:
    """Stop the connector (creating it stopped when it is gone) and forget its source offsets.

    Returns whether the connector existed.
    """
    connector = connector_name(source)
    existed = client.stop(connector)
    if not existed:
        client.create_stopped(connector, connector_config(source, config))
    deadline = time.monotonic() + 60
    while True:
        status = client.status(connector) or {}
        if status.get("connector", {}).get("state") == "STOPPED":
            break
        if time.monotonic() > deadline:
            raise ConnectorError("the connector did not stop in time", connector=connector)
        time.sleep(0.5)
    client.reset_offsets(connector)
    progress(f"connector {connector}: stopped and its offsets reset")
    return existed


def _slot(source: SourceConfig, drop: bool, wait_s: float, progress: Progress) -> dict[str, Any]:
    """Drop (or describe) a PostgreSQL source's replication slot."""
    slot = source.slot
    try:
        conn = open_connection(source)
    except psycopg.OperationalError as exc:
        raise ConnectorError(
            f"cannot connect as the CDC user to check the slot: {str(exc).strip()}",
            source=source.name,
            slot=slot,
        ) from exc
    with closing(conn):
        conn.autocommit = True
        deadline = time.monotonic() + wait_s
        while True:
            row = conn.execute(
                "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
                "FROM pg_replication_slots WHERE slot_name = %s",
                (slot,),
            ).fetchone()
            if row is None:
                return {"name": slot, "state": "absent"}
            active, retained = bool(row[0]), int(row[1] or 0)
            if not drop:
                progress(
                    f"slot {slot}: kept; it holds {retained} bytes of WAL and keeps holding more. "
                    f"Drop it with `cdchub connectors delete --source {source.name} --drop-slot`"
                )
                return {"name": slot, "state": "kept", "retained_wal_bytes": retained}
            if not active:
                break
            # The deleted connector's task may hold the slot for a moment while it stops.
            if time.monotonic() > deadline:
                raise ConnectorError(
                    "the slot is still in use after the connector was deleted (another consumer?); "
                    "not dropped",
                    source=source.name,
                    slot=slot,
                )
            time.sleep(0.5)
        try:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        except psycopg.Error as exc:
            raise ConnectorError(
                f"cannot drop the slot: {str(exc).strip()}", source=source.name, slot=slot
            ) from exc
        progress(f"slot {slot}: dropped ({retained} bytes of WAL released)")
        return {"name": slot, "state": "dropped", "released_wal_bytes": retained}


def _left_behind(config: HubConfig, source: SourceConfig) -> dict[str, Any]:
    """What a delete does not remove: topics, warehouse tables, the admin's source objects."""
    left: dict[str, Any] = {"topics": _topics(config, source)}
    left["warehouse_schema"] = source.name
    left["warehouse_tables"] = _warehouse_tables(config, source)
    if source.kind == "postgres":
        left["publication"] = source.publication
    beat = heartbeat_table(source)
    signal = signal_table(source)
    left["source_tables"] = [".".join(t) for t in (beat, signal) if t]
    return left


def _topics(config: HubConfig, source: SourceConfig) -> list[str] | str:
    from kafka import KafkaConsumer

    own = re.compile(rf"^{re.escape(source.name)}\.")
    control = {
        transaction_topic(source),
        heartbeat_topic(source),
        notification_topic(source),
        f"_cdchub.schema-history.{source.name}",
    }
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=config.kafka.bootstrap_servers, request_timeout_ms=10000
        )
        try:
            names = consumer.topics()
        finally:
            consumer.close()
    except Exception as exc:  # a report, not a failure: say why the list is missing
        return f"not listed: Kafka did not answer ({exc})"
    return sorted(t for t in names if own.match(t) or t in control)


def _warehouse_tables(config: HubConfig, source: SourceConfig) -> list[str] | str:
    from connectors.warehouses import open_session
    from ops.catalog import replicated_tables

    try:
        session = open_session(config, read_only=True)
    except CdcHubError as exc:
        return f"not listed: {exc}"
    try:
        return [
            f"{t.warehouse_schema}.{name}"
            for t in replicated_tables(session)
            if t.source == source.name
            for name in (t.current_table, t.history_table)
        ]
    finally:
        session.close()


def describe_delete(report: dict[str, Any]) -> str:
    """The human lines of one source's delete report."""
    left = report["left"]
    lines = [
        f"{report['connector']}: connector "
        + ("deleted" if report["connector_deleted"] else "did not exist")
    ]
    if report.get("offsets_reset"):
        lines.append("  Connect offsets: reset (a new connector of this source starts afresh)")
    slot = report.get("slot")
    if slot:
        lines.append(f"  slot {slot['name']}: {slot['state']}")
    topics = left["topics"]
    tables = left["warehouse_tables"]
    lines.append(
        "  left in Kafka: "
        + (", ".join(topics) if isinstance(topics, list) else topics)
        + (" (delete them with kafka-topics.sh --delete when no longer needed)" if topics else "")
    )
    lines.append(
        f"  left in the warehouse (schema {left['warehouse_schema']}): "
        + ((", ".join(tables) or "no tables") if isinstance(tables, list) else tables)
    )
    if left.get("publication"):
        lines.append(f"  left at the source: publication {left['publication']}")
    if left.get("source_tables"):
        lines.append(f"  left at the source: tables {', '.join(left['source_tables'])}")
    return "\n".join(lines)
