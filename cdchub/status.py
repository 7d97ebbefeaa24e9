"""`cdchub status`: one screen of everything an operator checks first, and whether a person is needed.

It reuses the services behind other commands (nothing is measured twice): the local stack's status,
`connectors status`, the lag report (`cdchub lag`: last applied commit, lag, Kafka consumer lag, the
last verify results from `_cdchub.checks`), and the warehouse catalog. It adds what no other command
shows: whether a `cdchub run` is consuming, each table's history version count and state (running,
stopped by a schema change, halted by a dead letter, backfilling).
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import Any

from core.config import HubConfig
from core.errors import CdcHubError
from merge import dead_letters


@dataclass
class Status:
    """The status document (`--json` prints `to_json()`)."""

    stack: dict[str, Any] | None = None
    connectors: list[dict[str, Any]] | str = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)
    tables: list[dict[str, Any]] = field(default_factory=list)
    # Transactions applied without transaction consistency within the window (`_cdchub.forced_releases`).
    forced_releases: dict[str, Any] | None = None
    # Dead letters per status (`_cdchub.dead_letters`; "open" ones need a person).
    dead_letters: dict[str, int] = field(default_factory=dict)
    # Letters not copied to their Kafka topic yet (`dead_letters.topic`), per topic.
    dead_letters_to_copy: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False when something needs a person."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """One JSON document."""
        return {
            "ok": self.ok,
            "problems": self.problems,
            "stack": self.stack,
            "connectors": self.connectors,
            "run": self.run,
            "tables": self.tables,
            "forced_releases": self.forced_releases,
            "dead_letters": self.dead_letters,
            "dead_letters_to_copy": self.dead_letters_to_copy,
            "notes": self.notes,
        }


def stack_is_local(config: HubConfig) -> bool:
    """True when the config points at the stack `cdchub stack up` runs (its Kafka and Connect)."""
    ports = config.stack.ports
    return config.kafka.bootstrap_servers == f"127.0.0.1:{ports.kafka}" and config.connect.url in (
        f"http://127.0.0.1:{ports.connect}",
        f"http://127.0.0.1:{ports.connect}/",
    )


def _stack(config: HubConfig, status: Status) -> None:
    if not stack_is_local(config):
        return
    from infrastructure.stack.service import LocalStack

    found = LocalStack(config).status()
    status.stack = {
        name: {"running": info["running"]}
        for name, info in found.items()
        if isinstance(info, dict) and "running" in info
    }
    down = [name for name, info in status.stack.items() if not info["running"]]
    if down:
        status.problems.append(f"local stack: {', '.join(down)} not running (`cdchub stack up`)")


def _connectors(config: HubConfig, status: Status) -> None:
    from connectors.connect_client import ConnectClient
    from connectors.service import connector_status

    # One screen answers in seconds: a Connect that refuses is reported, not retried for a minute.
    client = ConnectClient(config.connect.url, timeout=10.0, attempts=3)
    try:
        status.connectors = connector_status(config, client)
    except CdcHubError as exc:
        status.connectors = f"unknown: {exc}"
        status.problems.append(f"Kafka Connect: {exc}")
        return
    finally:
        client.close()
    for entry in status.connectors:
        tasks = entry["tasks"]
        if entry["state"] != "RUNNING" or not tasks or any(t != "RUNNING" for t in tasks):
            why = f": {entry['error']}" if entry.get("error") else ""
            status.problems.append(
                f"connector {entry['connector']} is {entry['state']} (tasks {tasks}){why}"
            )


def kafka_reachable(bootstrap_servers: str, timeout_s: float = 3.0) -> bool:
    """Whether any bootstrap server accepts a TCP connection (kafka-python waits far longer)."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
        except (OSError, ValueError):
            continue
        return True
    return False


def run_alive(config: HubConfig) -> dict[str, Any]:
    """Whether a `cdchub run` is consuming: the consumer group's live members in Kafka."""
    from kafka import KafkaAdminClient

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=config.kafka.bootstrap_servers, request_timeout_ms=10000
        )
    except Exception as exc:  # Kafka down: reported, not raised
        return {"alive": None, "group": config.kafka.group_id, "error": str(exc)}
    try:
        group = admin.describe_groups([config.kafka.group_id]).get(config.kafka.group_id) or {}
        if group.get("error"):
            raise RuntimeError(group["error"])
        members = [
            {"client_id": m.get("client_id"), "host": m.get("client_host")}
            for m in group.get("members") or []
        ]
        return {
            "alive": bool(members),
            "group": config.kafka.group_id,
            "group_state": group.get("group_state"),
            "members": members,
        }
    except Exception as exc:
        return {"alive": None, "group": config.kafka.group_id, "error": str(exc)}
    finally:
        admin.close()


def _lease(reader: Any, group: str) -> dict[str, Any]:
    """The consumer group's run lease: who holds it and whether that process is alive."""
    import datetime as dt

    from merge.runstate import holder_alive, holders

    try:
        found = holders(reader, group)
    except CdcHubError as exc:
        return {"alive": None, "error": str(exc)}
    now = dt.datetime.now(dt.UTC)
    return {
        "alive": any(holder_alive(h, now) for h in found) if found else False,
        "holders": [h.describe() for h in found],
    }


def _backfilling(config: HubConfig) -> dict[str, str]:
    """Tables with an incremental snapshot under way: topic → signal id (from notifications)."""
    from kafka import KafkaConsumer, TopicPartition

    from connectors.signals import notification_topic

    running: dict[str, str] = {}
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=config.kafka.bootstrap_servers,
            enable_auto_commit=False,
            allow_auto_create_topics=False,  # probing a topic must not create it
            consumer_timeout_ms=1500,
        )
    except Exception:
        return running
    try:
        for source in config.sources:
            topic = notification_topic(source)
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                continue
            tps = [TopicPartition(topic, p) for p in parts]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            open_snapshots: dict[str, list[str]] = {}
            for record in consumer:
                doc = _payload(record.value)
                if not doc or doc.get("aggregate_type") != "Incremental Snapshot":
                    continue
                extra = doc.get("additional_data") or {}
                if doc.get("type") == "STARTED":
                    names = str(extra.get("data_collections", "")).split(",")
                    open_snapshots[str(doc.get("id"))] = [n.strip() for n in names if n.strip()]
                elif doc.get("type") in ("COMPLETED", "ABORTED"):
                    open_snapshots.pop(str(doc.get("id")), None)
            for signal_id, collections in open_snapshots.items():
                for collection in collections:
                    # Debezium names PostgreSQL collections with the database first.
                    tail = ".".join(collection.split(".")[-2:])
                    running[f"{source.name}.{tail}"] = signal_id
    finally:
        consumer.close()
    return running


def _payload(raw: bytes | None) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw or b"null")
    except ValueError:
        return None
    if isinstance(doc, dict) and "payload" in doc and "schema" in doc:
        doc = doc["payload"]
    return doc if isinstance(doc, dict) else None


def _versions(reader: Any) -> dict[tuple[str, str], int]:
    """History versions per (source, schema.table), through the catalog."""
    from sqlglot import exp

    from merge import sqltree
    from ops.catalog import replicated_tables

    counts = {}
    for t in replicated_tables(reader):
        query = exp.select(exp.Count(this=exp.Star())).from_(
            sqltree.table(t.history_table, t.warehouse_schema)
        )
        counts[(t.source, f"{t.source_schema}.{t.source_table}")] = int(reader.query(query)[0][0])
    return counts


def _held(reader: Any, group: str) -> dict[str, int]:
    """Changes held for a schema decision, per topic (`_cdchub.parked_records`)."""
    from sqlglot import exp

    from merge import control, sqltree
    from merge.ledger import HELD_FOR_SCHEMA
    from merge.naming import CONTROL_SCHEMA

    if reader.table_columns(CONTROL_SCHEMA, control.PARKED) is None:
        return {}
    query = (
        exp.select(sqltree.col("topic"), exp.Count(this=exp.Star()))
        .from_(control.control_table(control.PARKED))
        .where(
            exp.and_(
                exp.EQ(this=sqltree.col("consumer_group"), expression=exp.Literal.string(group)),
                exp.EQ(this=sqltree.col("reason"), expression=exp.Literal.string(HELD_FOR_SCHEMA)),
            )
        )
        .group_by(sqltree.col("topic"))
    )
    return {str(r[0]): int(r[1]) for r in reader.query(query)}


def collect_status(config: HubConfig, reader: Any | None, window_s: float = 900.0) -> Status:
    """Everything `cdchub status` shows. `reader` reads the warehouse (None: it cannot be read)."""
    from ops.access import lag_report
    from ops.lag_report import build_report

    status = Status()
    _stack(config, status)
    if status.stack is not None and not status.stack.get("connect", {}).get("running"):
        status.connectors = "unknown: Kafka Connect is down"
    else:
        _connectors(config, status)
    # The stack's own process records say Kafka is down; a broker that answers on its port (one
    # started from another state directory) is believed over them.
    kafka_down = (
        status.stack is not None
        and not status.stack.get("kafka", {}).get("running")
        and not kafka_reachable(config.kafka.bootstrap_servers, timeout_s=0.5)
    )
    if kafka_down:  # nothing below can answer; do not wait for Kafka timeouts
        status.run = {"alive": None, "group": config.kafka.group_id, "error": "Kafka is down"}
        return status
    if not kafka_reachable(config.kafka.bootstrap_servers):
        # A remote Kafka that is down: say so at once; the warehouse side is still reported.
        servers = config.kafka.bootstrap_servers
        status.run = {"alive": None, "group": config.kafka.group_id, "error": "Kafka is down"}
        status.problems.append(f"Kafka is not reachable at {servers}")
        if reader is None:
            return status
        report = build_report(reader, config, window_s=window_s, with_kafka=False)
        _tables(config, reader, report, window_s, status, with_kafka=False)
        return status
    status.run = run_alive(config)
    if reader is not None:
        status.run["lease"] = _lease(reader, config.kafka.group_id)
        if status.run["lease"]["alive"] is not None:
            # The run lease (merge/runstate.py) is the hub's own word; group members are Kafka's.
            status.run["alive"] = status.run["lease"]["alive"] or bool(status.run.get("members"))
    if status.run.get("alive") is False:
        status.problems.append(
            f"no `cdchub run` is consuming (no live run lease, and consumer group "
            f"{config.kafka.group_id} has no members)"
        )
    try:
        # Through the reader when there is one: it reaches a DuckDB file held by a run too.
        report = (
            build_report(reader, config, window_s=window_s)
            if reader is not None
            else lag_report(config, window_s)
        )
    except CdcHubError as exc:
        status.problems.append(f"lag report: {exc}")
        return status
    _tables(config, reader, report, window_s, status)
    return status


def _tables(
    config: HubConfig,
    reader: Any | None,
    report: dict[str, Any],
    window_s: float,
    status: Status,
    *,
    with_kafka: bool = True,
) -> None:
    """Per table: state, last commit, lag, versions, held changes, verify; and what needs a person."""
    status.forced_releases = {
        "window_s": window_s,
        "count": int(report.get("forced_releases") or 0),
        "by_source": report.get("forced_releases_by_source") or {},
    }
    if report.get("kafka_error"):
        status.problems.append(f"Kafka: {report['kafka_error']}")
    versions: dict[tuple[str, str], int] = {}
    held: dict[str, int] = {}
    open_letters: dict[str, list[str]] = {}
    if reader is not None:
        versions = _versions(reader)
        held = _held(reader, config.kafka.group_id)
        status.dead_letters = dead_letters.counts(reader, config.kafka.group_id)
        status.dead_letters_to_copy = dead_letters.uncopied(reader, config.kafka.group_id)
        for topic, waiting in sorted(status.dead_letters_to_copy.items()):
            status.notes.append(
                f"{waiting} dead letter(s) not copied to Kafka topic {topic} yet: a running "
                "`cdchub run` copies them (they are safe in the warehouse meanwhile)"
            )
        for letter in dead_letters.letters(
            reader, config.kafka.group_id, statuses=(dead_letters.OPEN,)
        ):
            open_letters.setdefault(f"{letter.source}.{letter.table_name}", []).append(
                letter.letter_id
            )
    else:
        status.notes.append("history versions and held changes not read: the warehouse is held")
    backfills = _backfilling(config) if with_kafka else {}
    for t in report["tables"]:
        topic = f"{t['source']}.{t['table']}"
        state = "running"
        if topic in open_letters:
            state = "dead-lettered"
        elif t.get("state") == "stopped" or held.get(topic):
            state = "stopped by schema change"
        elif topic in backfills:
            state = "backfilling"
        checks_ok = t.get("checks_ok")
        entry = {
            "table": topic,
            "warehouse_table": t["warehouse_table"],
            "state": state,
            "last_applied_commit": t["last_applied_commit"],
            "lag_s": t["current_lag_s"],
            "lag_basis": t["current_lag_basis"],
            "slo_s": t["slo_s"],
            "kafka_consumer_lag": t["consumer_lag_messages"],
            "history_versions": versions.get((t["source"], t["table"])),
            "held_changes": held.get(topic, 0),
            "verify_ok": checks_ok,
            "verified_at": max((c["checked_at"] or "" for c in t["checks"]), default=None),
        }
        status.tables.append(entry)
        if state == "stopped by schema change":
            status.problems.append(
                f"{topic}: stopped by an incompatible schema change; fix the warehouse column, "
                f"then `cdchub schema accept {t['warehouse_table']}`"
            )
        if state == "dead-lettered":
            ids = " ".join(open_letters[topic])
            status.problems.append(
                f"{topic}: stopped by a dead letter ({ids}); `cdchub dlq show {ids.split()[0]}`, "
                f"fix the cause, then `cdchub dlq retry {ids}` (or `cdchub dlq skip`)"
            )
        if checks_ok is False:
            status.problems.append(f"{topic}: the last verify found differences (`cdchub verify`)")
        lag = t["current_lag_s"]
        if lag is not None and t["slo_s"] is not None and lag > t["slo_s"]:
            status.problems.append(f"{topic}: lag {lag:.1f}s is over its SLO of {t['slo_s']}s")


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def describe(status: Status) -> str:
    """The one screen, as text."""
    lines = []
    if status.stack is not None:
        lines.append(
            "stack: "
            + ", ".join(f"{n} {'up' if i['running'] else 'DOWN'}" for n, i in status.stack.items())
        )
    if isinstance(status.connectors, str):
        lines.append(f"connectors: {status.connectors}")
    for c in status.connectors if isinstance(status.connectors, list) else []:
        lines.append(
            f"connector {c['connector']}: {c['state']} (tasks {','.join(c['tasks']) or '-'})"
        )
    run = status.run
    alive = {True: "alive", False: "NOT RUNNING", None: "unknown"}[run.get("alive")]
    holders = (run.get("lease") or {}).get("holders") or []
    lines.append(
        f"cdchub run: {alive} (group {run.get('group')}"
        + (f"; lease: {'; '.join(holders)}" if holders else "")
        + ")"
    )
    if status.tables:
        header = (
            f"{'table':36} {'state':12} {'last commit':26} {'lag s':>8} {'kafka lag':>9} "
            f"{'versions':>9} verify"
        )
        lines.append(header)
        for t in status.tables:
            state = {"stopped by schema change": "STOPPED", "dead-lettered": "DLQ"}.get(
                t["state"], t["state"]
            )
            verify = {True: "ok", False: "FAILED", None: "-"}[t["verify_ok"]]
            lines.append(
                f"{t['table']:36} {state:12} {_cell(t['last_applied_commit']):26} "
                f"{_cell(t['lag_s']):>8} {_cell(t['kafka_consumer_lag']):>9} "
                f"{_cell(t['history_versions']):>9} {verify}"
            )
    forced = status.forced_releases
    if forced and forced["count"]:
        lines.append(
            f"forced transaction releases in the last {forced['window_s']:.0f}s: {forced['count']} "
            "(applied without transaction consistency; see docs/transactions.md)"
        )
    for note in status.notes:
        lines.append(f"note: {note}")
    if status.problems:
        lines.append("needs attention:")
        lines.extend(f"  - {p}" for p in status.problems)
    else:
        lines.append("status: ok")
    return "\n".join(lines)
