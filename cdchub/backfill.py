"""`cdchub backfill`: re-read one table (or part of it) through a Debezium incremental snapshot.

How it works:
1. The table's connector must run with signaling on (`signal.data.collection`, set by
   `connectors apply`). The signaling table is created when missing, as the CDC user; when that user
   may not, the error prints what an admin runs (connectors/signals.py).
2. An `execute-snapshot` signal (type `incremental`, optional `additional-conditions` filter) is
   inserted into the signaling table. Debezium reads the table in chunks, between watermarks, and
   emits each row as an `r` event on the table's topic, interleaved with the stream.
3. The command follows the table's topic (counting the `r` events: rows read) and the connector's
   notification topic (STARTED … COMPLETED, same id as the signal) until the snapshot completes.
4. Then it waits until the hub's consumer group has applied the topic up to where the snapshot
   ended (Kafka's committed offsets, which `cdchub run` commits after each warehouse commit), and
   counts the versions the re-read wrote: only rows that differed from the warehouse's current
   version (repaired drift). Equal rows write nothing (merge/plan.py `drop_unchanged_snapshot_rows`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
import pymysql
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from connectors import signals
from connectors.connect_client import ConnectClient
from connectors.debezium import connector_name, heartbeat_topic
from connectors.sources import open_connection
from core.config import HubConfig, SourceConfig
from core.errors import ConfigError, ConnectorError, Terminal

Progress = Callable[[str], None]


class BackfillError(Terminal):
    """The incremental snapshot could not be started or did not complete."""


@dataclass(frozen=True)
class BackfillTarget:
    """One source table to re-read."""

    source: SourceConfig
    namespace: str
    table: str

    @property
    def collection(self) -> str:
        """Debezium's name of the table (`schema.table` / `database.table`)."""
        return f"{self.namespace}.{self.table}"

    @property
    def topic(self) -> str:
        """The table's Kafka topic."""
        return f"{self.source.name}.{self.namespace}.{self.table}"

    @property
    def dialect(self) -> str:
        return "postgres" if self.source.kind == "postgres" else "mysql"


def resolve_table(config: HubConfig, text: str) -> BackfillTarget:
    """`shop.orders` or `shop.public.orders` → the source table (a ConfigError says what exists)."""
    parts = text.split(".")
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigError(
            f"--table {text!r}: write <source>.<table> or <source>.<schema>.<table> "
            "(e.g. shop.orders)"
        )
    source = config.source(parts[0])
    default = "public" if source.kind == "postgres" else source.database
    namespace, table = (default, parts[1]) if len(parts) == 2 else (parts[1], parts[2])
    if source.tables is not None and f"{namespace}.{table}" not in source.tables:
        raise ConfigError(
            f"--table {text!r} is not replicated; {source.name} captures: "
            + ", ".join(source.tables)
        )
    return BackfillTarget(source, namespace, table)


def parse_condition(target: BackfillTarget, condition: str | None) -> str | None:
    """The `--where` condition, parsed as one boolean expression in the source's dialect.

    Raises:
        ConfigError: it is not a single expression (no statement, no `;`).
    """
    if not condition:
        return None
    try:
        parsed = sqlglot.parse_one(condition, read=target.dialect)
    except ParseError as exc:
        raise ConfigError(f"--where {condition!r} is not a SQL condition: {exc}") from exc
    if not isinstance(parsed, exp.Condition) or isinstance(parsed, exp.Query):
        raise ConfigError(f'--where {condition!r}: give a condition such as "order_id > 100"')
    return parsed.sql(dialect=target.dialect)


@dataclass
class BackfillResult:
    """What `cdchub backfill` reports (`--json` prints it)."""

    table: str
    signal_id: str
    condition: str | None
    expected_rows: int
    rows_read: int = 0
    debezium_rows_scanned: int | None = None
    completed: bool = False
    applied: bool | None = None  # None: not waited for
    repaired_drift: int | None = None  # versions the re-read wrote; None when not counted
    unchanged: int | None = None
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    # The table topic's end offset per partition when the snapshot was requested: its rows follow.
    start_offsets: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON document."""
        return asdict(self)


# -- the source side ---------------------------------------------------------------------------


def _check_connector(config: HubConfig, target: BackfillTarget) -> None:
    client = ConnectClient(config.connect.url)
    name = connector_name(target.source)
    try:
        current = client.config(name)
        status = client.status(name)
    finally:
        client.close()
    if current is None:
        raise BackfillError(
            "the source has no connector; run `cdchub connectors apply`", connector=name
        )
    wanted = signals.signal_collection(target.source)
    if wanted is None:
        raise BackfillError(
            "signaling is off for this source (signal_table: null); set signal_table",
            source=target.source.name,
        )
    if current.get("signal.data.collection") != wanted:
        raise BackfillError(
            "the connector runs without signaling; run `cdchub connectors apply` to update it",
            connector=name,
        )
    state = (status or {}).get("connector", {}).get("state")
    tasks = [t.get("state") for t in (status or {}).get("tasks", [])]
    if state != "RUNNING" or not tasks or any(t != "RUNNING" for t in tasks):
        raise BackfillError(
            f"the connector is not running (state {state}, tasks {tasks}); "
            "see `cdchub connectors status`",
            connector=name,
        )


def _admin_hint(source: SourceConfig) -> str:
    return " ".join(signals.admin_statements(source))


def _ensure_signal_table(conn: Any, source: SourceConfig) -> list[str]:
    """Create the signaling table when missing (as the CDC user); notes of what was done."""
    namespace, table = signals.signal_table(source) or ("", "")
    notes: list[str] = []
    if source.kind == "postgres":
        qualified = signals.qualified_name(source)
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()[0]
        if not exists:
            try:
                conn.execute(signals.create_statement(source))
                conn.commit()
                notes.append(f"created the signaling table {qualified}")
            except psycopg.Error as exc:
                conn.rollback()
                raise ConfigError(
                    f"the signaling table {qualified} is missing and the CDC user cannot create it "
                    f"({str(exc).strip()}); as an admin run: {_admin_hint(source)}",
                    source=source.name,
                ) from exc
        ready = conn.execute(
            "SELECT has_table_privilege(%s, 'INSERT') AND EXISTS (SELECT 1 FROM "
            "pg_publication_tables WHERE pubname = %s AND schemaname = %s AND tablename = %s)",
            (qualified, source.publication, namespace, table),
        ).fetchone()[0]
        if not ready:
            try:
                conn.execute(
                    exp.Alter(
                        this=exp.to_identifier(source.publication),
                        kind="PUBLICATION",
                        actions=[exp.Var(this=f"ADD TABLE {qualified}")],
                    ).sql(dialect="postgres")
                )
                conn.commit()
                notes.append(f"added {qualified} to publication {source.publication}")
            except psycopg.Error as exc:
                conn.rollback()
                raise ConfigError(
                    f"the signaling table {qualified} must be writable by the CDC user and in "
                    f"publication {source.publication}; as an admin run: {_admin_hint(source)}",
                    source=source.name,
                ) from exc
        return notes
    with conn.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (namespace, table),
        )
        if cur.fetchone() is None:
            try:
                cur.execute(signals.create_statement(source))
                conn.commit()
                notes.append(f"created the signaling table {namespace}.{table}")
            except pymysql.MySQLError as exc:
                raise ConfigError(
                    f"the signaling table {namespace}.{table} is missing and the CDC user cannot "
                    f"create it ({exc}); as an admin run: {_admin_hint(source)}",
                    source=source.name,
                ) from exc
    return notes


def _count_rows(conn: Any, target: BackfillTarget, condition: str | None) -> int:
    query = exp.select(exp.Count(this=exp.Star())).from_(
        exp.table_(target.table, db=target.namespace, quoted=True)
    )
    if condition:
        query = query.where(sqlglot.parse_one(condition, read=target.dialect))
    sql = query.sql(dialect=target.dialect, identify=True)
    if target.source.kind == "postgres":
        row = conn.execute(sql).fetchone()
        conn.rollback()
    else:
        with conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
    return int(row[0])


def _send_signal(conn: Any, target: BackfillTarget, signal_id: str, condition: str | None) -> None:
    data = signals.snapshot_signal(target.collection, condition)
    sql = signals.insert_signal(target.source, signal_id, "execute-snapshot", data)
    try:
        if target.source.kind == "postgres":
            conn.execute(sql)
        else:
            with conn.cursor() as cur:
                cur.execute(sql)
        conn.commit()
    except (psycopg.Error, pymysql.MySQLError) as exc:
        raise ConfigError(
            f"cannot write the signal ({str(exc).strip()}); as an admin run: "
            f"{_admin_hint(target.source)}",
            source=target.source.name,
        ) from exc


# -- following the snapshot on Kafka ------------------------------------------------------------


def _payload(raw: bytes | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if isinstance(doc, dict) and "payload" in doc and "schema" in doc:
        doc = doc["payload"]
    return doc if isinstance(doc, dict) else None


class _Follower:
    """Reads the table topic and the source's heartbeats (from their ends at start), and the
    notification topic (from its start: it is small, and filtered by the signal's id)."""

    def __init__(self, config: HubConfig, target: BackfillTarget) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self._tp = TopicPartition
        self.target = target
        self.consumer = KafkaConsumer(
            bootstrap_servers=config.kafka.bootstrap_servers,
            enable_auto_commit=False,
            allow_auto_create_topics=False,  # probing a topic must not create it
            consumer_timeout_ms=1000,
        )
        self.notifications = signals.notification_topic(target.source)
        self.heartbeats = heartbeat_topic(target.source)
        parts = self.consumer.partitions_for_topic(target.topic) or {0}
        self.table_parts = [TopicPartition(target.topic, p) for p in sorted(parts)]
        self.beat_parts = [
            TopicPartition(self.heartbeats, p)
            for p in sorted(self.consumer.partitions_for_topic(self.heartbeats) or ())
        ]
        self.note_parts: list[Any] = []
        self.consumer.assign(self.table_parts + self.beat_parts)
        self.start = self.consumer.end_offsets(self.table_parts)
        for tp, offset in self.consumer.end_offsets(self.table_parts + self.beat_parts).items():
            self.consumer.seek(tp, offset)
        self.rows_read = 0
        self.last_row_at = time.monotonic()
        self.last_beat_ms = 0  # source time of the newest heartbeat read
        self.events: list[dict[str, Any]] = []

    def _watch_notifications(self) -> None:
        """Add the notification (and heartbeat) topics once they exist: the connector creates
        them with its first message. Read from their start; ids and times filter them."""
        added = []
        if not self.note_parts:
            parts = self.consumer.partitions_for_topic(self.notifications) or ()
            self.note_parts = [self._tp(self.notifications, p) for p in sorted(parts)]
            added += self.note_parts
        if not self.beat_parts:
            parts = self.consumer.partitions_for_topic(self.heartbeats) or ()
            self.beat_parts = [self._tp(self.heartbeats, p) for p in sorted(parts)]
            added += self.beat_parts
        if added:
            self.consumer.assign(self.table_parts + self.beat_parts + self.note_parts)
            for tp in added:
                self.consumer.seek_to_beginning(tp)

    def poll(self, signal_id: str) -> None:
        """Read what arrived: count `r` rows, note heartbeats, collect this signal's notifications."""
        self._watch_notifications()
        for tp, records in self.consumer.poll(timeout_ms=500, max_records=5000).items():
            for record in records:
                doc = _payload(record.value)
                if doc is None:
                    continue
                if tp.topic == self.target.topic:
                    if doc.get("op") == "r":
                        self.rows_read += 1
                        self.last_row_at = time.monotonic()
                elif tp.topic == self.heartbeats:
                    self.last_beat_ms = max(self.last_beat_ms, int(doc.get("ts_ms") or 0))
                elif doc.get("id") == signal_id:
                    self.events.append(doc)

    def end_offsets(self) -> dict[Any, int]:
        """The table topic's end offsets now."""
        return self.consumer.end_offsets(self.table_parts)

    def position_reached(self, ends: dict[Any, int]) -> bool:
        """True when every table partition has been read up to `ends`."""
        return all(self.consumer.position(tp) >= end for tp, end in ends.items())

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()


def _applied_through(config: HubConfig, ends: dict[Any, int]) -> bool:
    """True when the hub's consumer group has committed (after its warehouse commit) up to `ends`."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=config.kafka.bootstrap_servers,
        group_id=config.kafka.group_id,
        enable_auto_commit=False,
    )
    try:
        return all((consumer.committed(tp) or 0) >= end for tp, end in ends.items())
    finally:
        consumer.close()


# -- the run -----------------------------------------------------------------------------------


ProgressBar = Callable[[int, int], None]


def run_backfill(
    config: HubConfig,
    table: str,
    condition: str | None = None,
    *,
    timeout_s: float = 900.0,
    wait_applied_s: float = 300.0,
    progress: Progress = print,
    bar: ProgressBar | None = None,
    count_versions: Callable[[BackfillTarget, str], tuple[int, int] | None] | None = None,
) -> BackfillResult:
    """Trigger an incremental snapshot of `table`, follow it to completion, report what it did.

    `bar(read, expected)` is called as rows arrive; `count_versions(target, since_position)` counts
    the re-read versions in the warehouse (None when it cannot read it).

    Raises:
        ConfigError: bad table or condition, or the signaling table cannot be prepared.
        BackfillError: the connector is not ready, the snapshot aborted or did not finish in time.
    """
    target = resolve_table(config, table)
    where = parse_condition(target, condition)
    _check_connector(config, target)
    started = time.monotonic()
    signal_id = f"cdchub-backfill-{uuid.uuid4()}"
    try:
        conn = open_connection(target.source)
    except (psycopg.OperationalError, pymysql.MySQLError) as exc:
        raise ConnectorError(
            f"cannot connect as the CDC user: {str(exc).strip()}", source=target.source.name
        ) from exc
    with closing(conn):
        notes = _ensure_signal_table(conn, target.source)
        try:
            expected = _count_rows(conn, target, where)
        except (psycopg.Error, pymysql.MySQLError) as exc:
            raise ConfigError(
                f"cannot count the rows to re-read ({str(exc).strip()}); check --where",
                table=target.collection,
            ) from exc
        result = BackfillResult(
            table=target.topic,
            signal_id=signal_id,
            condition=where,
            expected_rows=expected,
            notes=notes,
        )
        for note in notes:
            progress(f"backfill: {note}")
        follower = _Follower(config, target)
        result.start_offsets = {tp.partition: offset for tp, offset in follower.start.items()}
        try:
            _send_signal(conn, target, signal_id, where)
            progress(
                f"backfill: incremental snapshot of {target.collection} requested "
                f"({expected} rows{' where ' + where if where else ''}; signal {signal_id})"
            )
            _follow(follower, result, signal_id, started + timeout_s, progress, bar)
            ends = follower.end_offsets()
        finally:
            follower.close()
    if wait_applied_s > 0:
        result.applied = _wait_applied(config, ends, wait_applied_s, progress)
        if result.applied and count_versions is not None:
            counted = count_versions(target, _first_position(config, target, follower.start))
            if counted is not None:
                result.repaired_drift = counted[0]
                result.unchanged = max(0, result.rows_read - counted[0])
    result.elapsed_s = round(time.monotonic() - started, 1)
    return result


def _follow(
    follower: _Follower,
    result: BackfillResult,
    signal_id: str,
    deadline: float,
    progress: Progress,
    bar: ProgressBar | None,
) -> None:
    seen = 0
    completed_ms: int | None = None
    while True:
        follower.poll(signal_id)
        result.rows_read = follower.rows_read
        if bar is not None:
            bar(follower.rows_read, result.expected_rows)
        for event in follower.events[seen:]:
            kind = event.get("type")
            extra = event.get("additional_data") or {}
            if kind == "TABLE_SCAN_COMPLETED" and extra.get("total_rows_scanned") is not None:
                result.debezium_rows_scanned = int(extra["total_rows_scanned"])
            if kind in ("ABORTED", "PAUSED") or (extra.get("status") or "").upper() in (
                "SQL_EXCEPTION",
                "UNKNOWN_SCHEMA",
            ):
                raise BackfillError(
                    f"the incremental snapshot stopped: {kind} {json.dumps(extra)}",
                    signal=signal_id,
                )
            if kind == "COMPLETED":
                completed_ms = int(event.get("timestamp") or 0)
        seen = len(follower.events)
        if completed_ms is not None and _all_rows_out(follower, result, completed_ms):
            result.completed = True
            return
        if time.monotonic() > deadline:
            raise BackfillError(
                f"the incremental snapshot did not complete in time ({follower.rows_read} of "
                f"{result.expected_rows} rows read); it may still be running: see "
                "`cdchub connectors status`",
                signal=signal_id,
            )


QUIET_S = 3.0


def _all_rows_out(follower: _Follower, result: BackfillResult, completed_ms: int) -> bool:
    """Whether every re-read row is on the topic, once Debezium notified COMPLETED.

    COMPLETED comes before the last chunk's rows: Debezium reads a chunk, writes the window's close
    marker and notifies, but sends the chunk only when its stream reaches that marker in the log
    (docs/facts.md). So: every scanned row has arrived; or (rows changed during their window are
    dropped from the chunk, so fewer may come) a heartbeat newer than COMPLETED shows the stream has
    moved on and no row came for a few seconds. Either way the topic is read to its end.
    """
    if not follower.position_reached(follower.end_offsets()):
        return False
    scanned = result.debezium_rows_scanned
    if scanned is not None and follower.rows_read >= scanned:
        return True
    quiet = time.monotonic() - follower.last_row_at >= QUIET_S
    return quiet and follower.last_beat_ms > completed_ms


def _wait_applied(
    config: HubConfig, ends: dict[Any, int], wait_s: float, progress: Progress
) -> bool:
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        if _applied_through(config, ends):
            return True
        if not told:
            progress("backfill: waiting for `cdchub run` to apply the re-read rows")
            told = True
        if time.monotonic() > deadline:
            progress(
                "backfill: not applied yet (is `cdchub run` running?); the rows are in Kafka and "
                "apply when it runs"
            )
            return False
        time.sleep(1)


def first_reread_position(config: HubConfig, target: BackfillTarget, start: dict[int, int]) -> str:
    """The source position of the re-read's first row (`start`: `BackfillResult.start_offsets`).

    Every `r` version at or after it in history came from this re-read; "~" when none arrived.
    """
    from kafka import TopicPartition

    offsets = {TopicPartition(target.topic, p): o for p, o in start.items()}
    return _first_position(config, target, offsets)


def _first_position(config: HubConfig, target: BackfillTarget, start: dict[Any, int]) -> str:
    """The source position of the first `r` event after `start`: the re-read's versions are
    the `r` versions at or after it."""
    from kafka import KafkaConsumer

    from cdc_consumers.positions import binlog_position, postgres_position

    consumer = KafkaConsumer(
        bootstrap_servers=config.kafka.bootstrap_servers,
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        for record in consumer:
            doc = _payload(record.value)
            if doc and doc.get("op") == "r":
                source = doc.get("source") or {}
                if target.source.kind == "postgres":
                    return postgres_position(source, None)
                return binlog_position(source, None)
    finally:
        consumer.close()
    return "~"  # none found: sorts after every position, so nothing is counted


def count_reread_versions(session: Any, target: BackfillTarget, since: str) -> int | None:
    """History versions written by re-read (`r`) rows at or after position `since`.

    `session` is any reader with `query(expression)` (a warehouse session, or the running hub's).
    """
    from merge import sqltree
    from merge.naming import OP, SOURCE_POS
    from ops.catalog import replicated_tables

    found = [
        t
        for t in replicated_tables(session)
        if (t.source, t.source_schema, t.source_table)
        == (target.source.name, target.namespace, target.table)
    ]
    if not found:
        return None
    t = found[0]
    query = (
        exp.select(exp.Count(this=exp.Star()))
        .from_(sqltree.table(t.history_table, t.warehouse_schema))
        .where(
            exp.and_(
                exp.EQ(this=sqltree.col(OP), expression=exp.Literal.string("r")),
                exp.GTE(this=sqltree.col(SOURCE_POS), expression=exp.Literal.string(since)),
            )
        )
    )
    return int(session.query(query)[0][0])
