"""`cdchub bench catchup`: how fast a fresh `cdchub run` drains a backlog Debezium already wrote.

The whole path, nothing synthetic: a private stack (PostgreSQL, MariaDB, Kafka, Kafka Connect with the
Debezium plugins) on free ports in a temporary state directory; the demo `shop` database, grown with a
big `customers` table (the snapshot) and, once the connector runs, a stream of multi-table
transactions committed by a server-side procedure (order + two items + payment + a customer update,
and every tenth a payment delete). When every data topic holds the records this must produce, a
fresh Runner (fresh warehouse, fresh consumer group) is timed from its start to its last commit, and
the warehouse is verified against the source with `ops.verify`. With `peer`, Debezium's JDBC sink
connector (upsert, deletes on, one task) then reads the same topics into a new PostgreSQL database
of the stack, timed from registration until its tables equal the source.

It prints figures and asserts nothing about speed (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from connectors.warehouses.nesting import NestedTransaction
from core.config import DuckDBWarehouse, HubConfig, load_config
from core.errors import StackError
from core.model import ChangeEvent, TableId
from core.signals import interrupted_by
from merge.session import WarehouseSession
from observability.instrumentation import (
    BatchTimes,
    BatchWatch,
    HistoryName,
    NoInstrumentation,
    S,
)

Progress = Callable[[str], None]
SOURCE = "shop"
TABLES = ("customers", "products", "orders", "order_items", "payments")
# Streamed row changes per transaction (order, two items, payment, customer update); every tenth
# transaction also deletes a payment.
EVENTS_PER_TX = 5
DELETE_EVERY = 10
SNAPSHOT_SHARE = 0.6
PEER_DATABASE = "cdchub_peer"
PEER_CONNECTOR = "cdchub-bench-jdbc-sink"
# Columns (key first, then one the workload changes) compared between the source and the peer.
PEER_FINGERPRINT = {
    "customers": ("customer_id", "loyalty_points"),
    "products": ("product_id", "reorder_level"),
    "orders": ("order_id", "customer_id"),
    "order_items": ("order_id", "line_no", "product_id"),
    "payments": ("payment_id", "order_id"),
}

_FILL_PROCEDURE = """
CREATE OR REPLACE PROCEDURE public.cdchub_bench_fill(n integer)
LANGUAGE plpgsql AS $$
DECLARE
    customers bigint[] := ARRAY(SELECT customer_id FROM public.customers ORDER BY customer_id);
    products integer[] := ARRAY(SELECT product_id FROM public.products ORDER BY product_id);
    i integer;
    cid bigint;
    pid integer;
    oid bigint;
    pay bigint;
    earlier bigint;
BEGIN
    FOR i IN 1..n LOOP
        cid := customers[1 + (i * 7919) % array_length(customers, 1)];
        pid := products[1 + (i * 31) % array_length(products, 1)];
        INSERT INTO public.orders (order_uuid, customer_id, status, order_date, placed_at,
                                   total_amount, currency, shipping_address, notes, updated_at)
        VALUES (gen_random_uuid(), cid, 'paid', date '2026-01-01' + i % 300,
                timestamptz '2026-01-01' + i * interval '1 minute', 20.00, 'EUR',
                jsonb_build_object('city', 'Lyon', 'zip', (10000 + i % 89999)::text),
                CASE WHEN i % 4 = 0 THEN 'bench ' || i END, clock_timestamp())
        RETURNING order_id INTO oid;
        INSERT INTO public.order_items (order_id, line_no, product_id, quantity, unit_price,
                                        discount_pct)
        VALUES (oid, 1, pid, 1 + i % 3, 10.00, 0), (oid, 2, pid, 1, 10.00, 0.1);
        INSERT INTO public.payments (order_id, amount, method, provider_ref, succeeded, details,
                                     paid_at)
        VALUES (oid, 20.00, 'card', gen_random_uuid(), true, '{"bench": true}', clock_timestamp())
        RETURNING payment_id INTO pay;
        UPDATE public.customers SET loyalty_points = loyalty_points + 1,
                                    updated_at = clock_timestamp()
        WHERE customer_id = cid;
        IF i % 10 = 5 THEN
            earlier := pay;
        END IF;
        IF i % 10 = 0 THEN
            DELETE FROM public.payments WHERE payment_id = earlier;
        END IF;
        COMMIT;
    END LOOP;
END
$$;
"""

_BIG_TABLE = """
INSERT INTO public.customers (external_id, email, full_name, phone, birth_date, loyalty_points,
                              is_active, segments, preferences, created_at, updated_at)
SELECT gen_random_uuid(), 'bench-' || g || '@example.com', 'Bench Customer ' || g,
       CASE WHEN g %% 3 = 0 THEN NULL ELSE '+33 6 ' || lpad((g %% 100000000)::text, 8, '0') END,
       date '1950-01-01' + g %% 20000, g %% 1000, g %% 7 <> 0, ARRAY['bench', 'seg' || g %% 5],
       jsonb_build_object('lang', 'fr', 'n', g),
       timestamptz '2025-01-01' + g * interval '1 second',
       timestamptz '2025-01-01' + g * interval '1 second'
FROM generate_series(1, %s) AS g
"""


@dataclass
class Split:
    """Where the timed run spent its time (seconds).

    Two threads: the main one polls and decodes (`poll`, `decode`) and waits for the apply thread
    when a batch is ready before the previous one committed (`wait`); the apply thread merges the
    tables (`merge`) and does the rest of a batch's transaction (`park`: held records, offsets,
    control tables, the commit). `poll + decode + wait` is the wall time; `park + merge` overlaps it.
    """

    poll: float = 0.0
    decode: float = 0.0
    park: float = 0.0
    merge: float = 0.0
    wait: float = 0.0


@dataclass
class PeerResult:
    """The Debezium JDBC sink's time to bring the same topics into PostgreSQL."""

    seconds: float
    events_per_s: float
    equal: bool


@dataclass
class CatchupResult:
    """What `bench catchup` measured."""

    warehouse: str
    transaction_consistent: bool
    events: int
    snapshot_rows: int
    transactions: int
    kafka_records: int
    kafka_bytes: int
    fill_seconds: float
    produce_seconds: float
    applied_events: int
    batches: int
    seconds: float
    events_per_s: float
    peak_rss_mb: float
    rss_before_run_mb: float
    split: Split
    # Transactions the run applied without transaction consistency (its buffer bound or a stall).
    forced_releases: int
    verify_ok: bool
    verify_failures: list[str]
    load_before: str
    load_after: str
    # The most events parked at once (transaction consistency), and RSS / parked after each batch.
    peak_parked_events: int = 0
    # CPU seconds of this process (all its threads) from the run's start to the commit that
    # applied the backlog's last event.
    cpu_seconds: float = 0.0
    # Seconds to the run's last commit: later than `seconds` when a commit stored only offsets of
    # records produced during the run (heartbeat transactions' markers).
    last_commit_seconds: float = 0.0
    # The wait for a quiet machine before the run, the share of a core busy when it ended, and
    # the CPU seconds every other process used while the run's process lived.
    settle_seconds: float = 0.0
    settled_cores: float = 0.0
    others_cpu_seconds: float = 0.0
    batch_trace: list[dict[str, Any]] = field(default_factory=list)
    # The warehouse's settings that bound the run's memory and its checkpoints (DuckDB).
    warehouse_settings: dict[str, str | None] = field(default_factory=dict)
    peer: PeerResult | None = None
    speedup_over_peer: float | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The figures as readable lines."""
        consistency = "on" if self.transaction_consistent else "off"
        total = self.seconds or 1.0
        s = self.split
        lines = [
            f"bench catchup into {self.warehouse} (transaction consistency {consistency})",
            f"  backlog      {self.events:,} row changes ({self.snapshot_rows:,} snapshot rows, "
            f"{self.transactions:,} transactions); {self.kafka_records:,} Kafka records, "
            f"{self.kafka_bytes / 1e6:,.0f} MB",
            f"  produced in  {self.fill_seconds:.0f} s fill + {self.produce_seconds:.0f} s until "
            "Debezium had written everything",
            f"  run          {self.applied_events:,} events in {self.batches} batches, "
            f"{self.seconds:.1f} s to the commit of its last event -> "
            f"{self.events_per_s:,.0f} events/s"
            + (
                f" (a later commit stored offsets only, at {self.last_commit_seconds:.1f} s)"
                if self.last_commit_seconds > self.seconds + 0.0005
                else ""
            ),
            f"  main thread  poll {s.poll:.1f} s ({s.poll / total:.0%}), decode {s.decode:.1f} s "
            f"({s.decode / total:.0%}), waiting for the apply thread {s.wait:.1f} s "
            f"({s.wait / total:.0%})",
            f"  apply thread merge {s.merge:.1f} s ({s.merge / total:.0%}), park/offsets/commit "
            f"{s.park:.1f} s ({s.park / total:.0%})",
            f"  cpu          {self.cpu_seconds:.1f} s in this process "
            f"({self.cpu_seconds / total:.2f} of the 2 cores' seconds per wall second)",
            f"  peak RSS     {self.peak_rss_mb:.0f} MB (this process; "
            f"{self.rss_before_run_mb:.0f} MB before the run started)"
            + (
                " under "
                + ", ".join(f"{k} {v or 'default'}" for k, v in self.warehouse_settings.items())
                if self.warehouse_settings
                else ""
            ),
            f"  forced       {self.forced_releases} transaction(s) released incomplete; "
            f"at most {self.peak_parked_events:,} events parked at once",
            f"  verify       {'OK' if self.verify_ok else 'FAILED: ' + '; '.join(self.verify_failures)}",
        ]
        if self.peer is not None:
            lines.append(
                f"  peer         Debezium JDBC sink: {self.peer.seconds:.1f} s -> "
                f"{self.peer.events_per_s:,.0f} events/s "
                f"({'tables equal' if self.peer.equal else 'tables NOT equal'}); "
                f"cdchub / peer = {self.speedup_over_peer or 0:.2f}x"
            )
        lines.append(
            f"  load         before {self.load_before}; after {self.load_after}; waited "
            f"{self.settle_seconds:.0f} s for the stack to settle ({self.settled_cores:.2f} of a "
            f"core busy); other processes used {self.others_cpu_seconds:.1f} CPU s meanwhile"
        )
        lines.extend(f"  note         {n}" for n in self.notes)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The figures as a JSON object."""
        return asdict(self)


# -- timers handed to the Runner (cheap: a perf_counter pair per batch stage) -----------------


class _TimedSession:
    """A WarehouseSession whose outermost transactions are timed; everything else passes through."""

    def __init__(self, inner: WarehouseSession, timers: CatchupTimers) -> None:
        self._inner = inner
        self._timers = timers
        self._nesting = NestedTransaction()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def transaction(self) -> AbstractContextManager[None]:
        """The inner session's transaction; an inner block joins it, the outermost one is timed."""
        return self._nesting.block(self._timed)

    @contextmanager
    def _timed(self) -> Iterator[None]:
        began = time.perf_counter()
        try:
            with self._inner.transaction():
                yield
        finally:
            self._timers.transaction_s += time.perf_counter() - began


class CatchupTimers(NoInstrumentation):
    """Runner instrumentation that only adds up stage times (no spans, no metrics)."""

    def __init__(self) -> None:
        self.batch_s = 0.0
        self.decode_s = 0.0
        self.merge_s = 0.0
        self.transaction_s = 0.0

    def wrap_session(self, session: S) -> S:
        return _TimedSession(session, self)  # type: ignore[arg-type, return-value]

    @contextmanager
    def batch(self, records: Sequence[Any], times: BatchTimes) -> Iterator[BatchWatch]:
        began = time.perf_counter()
        self.decode_s += times.decode_s
        try:
            yield BatchWatch()
        finally:
            self.batch_s += time.perf_counter() - began

    @contextmanager
    def merge_table(
        self, table: TableId, names: HistoryName, events: Sequence[ChangeEvent]
    ) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.merge_s += time.perf_counter() - began

    def split(self, total_s: float, wait_s: float) -> Split:
        """Poll = main-thread time neither decoding nor waiting for the apply thread; park = apply
        time not spent merging tables."""
        return Split(
            poll=max(0.0, total_s - self.decode_s - wait_s),
            decode=self.decode_s,
            park=max(0.0, self.batch_s - self.merge_s),
            merge=self.merge_s,
            wait=wait_s,
        )


# -- the private stack --------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


def _write_config(base: Path, warehouse: str) -> HubConfig:
    names = ["postgres", "mariadb", "kafka", "kafka_controller", "connect"]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    state = base / "state"
    doc: dict[str, Any] = {
        "state_dir": str(state),
        "stack": {"ports": ports},
        "kafka": {
            "bootstrap_servers": f"127.0.0.1:{ports['kafka']}",
            "group_id": "cdchub-bench",
        },
        "connect": {"url": f"http://127.0.0.1:{ports['connect']}"},
        "sources": [
            {
                "name": SOURCE,
                "kind": "postgres",
                "port": ports["postgres"],
                "database": "shop",
                "user": "cdc_reader",
                "password_file": str(state / "secrets" / "postgres_cdc.password"),
                "tables": [f"public.{t}" for t in TABLES],
            }
        ],
        "warehouse": {"kind": "duckdb", "path": str(base / "warehouse.duckdb")},
    }
    path = base / "cdchub.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    config = load_config(path)
    if warehouse == "postgres":
        from infrastructure.stack.layout import StackLayout

        config = config.model_copy(update={"warehouse": StackLayout(config).pg_warehouse_config()})
    return config


@contextmanager
def _private_stack(warehouse: str, progress: Progress) -> Iterator[HubConfig]:
    from infrastructure.stack.service import LocalStack

    # Not a 0700 temp dir: the postgres and mysql users must traverse it.
    base = Path(tempfile.mkdtemp(prefix="cdchub-bench-"))
    base.chmod(0o755)
    config = _write_config(base, warehouse)
    local = LocalStack(config)

    # A bench stopped with SIGTERM (kill, timeout) still purges its private stack.
    try:
        with interrupted_by(signal.SIGTERM):
            progress(f"bench: starting a private stack in {base}")
            local.up(progress=progress)
            yield config
    finally:
        local.down(purge=True, progress=progress)
        shutil.rmtree(base, ignore_errors=True)


# -- filling Kafka ------------------------------------------------------------------------------


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _busy_cpu_s() -> float:
    """CPU seconds every process of this machine has used since boot, over all cores."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    # user nice system idle iowait irq softirq steal: all but idle and iowait.
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


# The stack is settled when it uses less than this share of a core (idle, it uses ~0.03).
SETTLED_CORES = 0.15
SETTLE_WINDOW_S = 2.0
SETTLE_LIMIT_S = 60.0


def _wait_settled(progress: Progress) -> tuple[float, float]:
    """Wait until the machine is quiet after the fill: (seconds waited, cores busy at the end).

    Right after Debezium has written the backlog its JVMs still work for seconds (commits, JIT,
    GC; measured at 5-70% of a core into the timed run), and on two cores that is taken from the
    run. The bench measures the consumer draining a backlog, so it waits (at most
    `SETTLE_LIMIT_S`) and says how long.
    """
    began = time.monotonic()
    while True:
        before = _busy_cpu_s()
        time.sleep(SETTLE_WINDOW_S)
        busy = (_busy_cpu_s() - before) / SETTLE_WINDOW_S
        waited = time.monotonic() - began
        settled = busy < SETTLED_CORES
        if settled or waited >= SETTLE_LIMIT_S:
            state = "the stack settled" if settled else "the machine is still busy"
            progress(
                f"bench: {state} ({busy:.2f} of a core busy) after {waited:.0f} s"
                + ("" if settled else "; timing anyway")
            )
            return waited, busy


def _data_topics(config: HubConfig) -> list[str]:
    return [f"{SOURCE}.public.{t}" for t in TABLES]


def _end_offsets(consumer: KafkaConsumer, topics: list[str]) -> int:
    existing = consumer.topics()
    partitions = [
        TopicPartition(t, p)
        for t in topics
        if t in existing
        for p in (consumer.partitions_for_topic(t) or ())
    ]
    if not partitions:
        return 0
    return sum(consumer.end_offsets(partitions).values())


def _topic_bytes(config: HubConfig, topics: list[str]) -> int:
    """Bytes of the topics' log segments on the broker's disk (the state dir is ours)."""
    from infrastructure.stack.layout import StackLayout

    root = StackLayout(config).data("kafka")
    total = 0
    for topic in topics:
        for part in root.rglob(f"{topic}-*"):
            if part.is_dir() and part.name.rsplit("-", 1)[0] == topic:
                total += sum(f.stat().st_size for f in part.glob("*.log"))
    return total


@dataclass
class _Backlog:
    events: int
    snapshot_rows: int
    transactions: int
    records: int
    fill_s: float
    produce_s: float


def _fill(config: HubConfig, events: int, progress: Progress) -> _Backlog:
    """Snapshot rows + streamed transactions through the real connector; wait until all are in Kafka."""
    from connectors.service import apply_connectors
    from dbschemas.demo_sources import pg_connect
    from dbschemas.loader import load_demo_schemas
    from infrastructure.stack.layout import StackLayout

    layout = StackLayout(config)
    load_demo_schemas(layout, list(config.sources), progress=progress)
    began = time.monotonic()
    with pg_connect(layout.pg_admin, "shop") as conn:
        counts = {
            t: int(
                conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", t))
                ).fetchone()[0]  # type: ignore[index]
            )
            for t in TABLES
        }
        seeded = sum(counts.values())
        per_tx = EVENTS_PER_TX + 1 / DELETE_EVERY
        big = max(0, int(events * SNAPSHOT_SHARE) - seeded)
        transactions = max(1, math.ceil((events - seeded - big) / per_tx))
        progress(f"bench: adding {big:,} customers (the snapshot's big table)")
        conn.execute(_BIG_TABLE, (big,))
        conn.execute(_FILL_PROCEDURE)
        conn.commit()
    snapshot_rows = seeded + big
    deletes = transactions // DELETE_EVERY
    streamed = transactions * EVENTS_PER_TX + deletes
    total_events = snapshot_rows + streamed
    # Each delete is followed by a tombstone record on its topic.
    expected_records = total_events + deletes
    apply_connectors(config, progress=progress)
    progress(f"bench: committing {transactions:,} transactions ({streamed:,} row changes)")
    with pg_connect(layout.pg_admin, "shop", autocommit=True) as conn:
        # The bench measures the consumer, not the source's fsyncs.
        conn.execute("SET synchronous_commit = off")
        conn.execute("CALL public.cdchub_bench_fill(%s)", (transactions,))
    fill_s = time.monotonic() - began
    produce_began = time.monotonic()
    _wait_produced(config, expected_records, progress)
    return _Backlog(
        total_events,
        snapshot_rows,
        transactions,
        expected_records,
        fill_s,
        time.monotonic() - produce_began,
    )


def _wait_produced(config: HubConfig, expected: int, progress: Progress) -> None:
    """Until the data topics' end offsets add up to `expected`; fail when they stop growing."""
    topics = _data_topics(config)
    consumer = KafkaConsumer(bootstrap_servers=config.kafka.bootstrap_servers)
    try:
        last, last_change, last_report = -1, time.monotonic(), 0.0
        while True:
            ends = _end_offsets(consumer, topics)
            now = time.monotonic()
            if ends != last:
                last, last_change = ends, now
            if ends >= expected:
                progress(f"bench: Debezium wrote all {ends:,} data records")
                return
            if now - last_change > 180:
                raise StackError(
                    f"Debezium stopped producing at {ends:,} of {expected:,} data records "
                    "for 180 s; see the connect log",
                    component="connect",
                )
            if now - last_report > 5:
                last_report = now
                progress(f"bench: waiting for Debezium: {ends:,} / {expected:,} data records")
            time.sleep(1)
    finally:
        consumer.close()


# -- the timed run ------------------------------------------------------------------------------


@contextmanager
def _session(config: HubConfig) -> Iterator[WarehouseSession]:
    from connectors.warehouses import open_session

    session = open_session(config)
    try:
        yield session
    finally:
        session.close()


@dataclass
class _Timed:
    applied: int
    batches: int
    seconds: float
    split: Split
    peak_rss_mb: float
    rss_before_mb: float
    forced_releases: int
    peak_parked: int
    trace: list[dict[str, Any]]
    cpu_seconds: float
    last_commit_seconds: float


@contextmanager
def _profiler(output: Path | None, progress: Progress) -> Iterator[None]:
    """py-spy sampling this process while the block runs (collapsed stacks into `output`)."""
    if output is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    proc = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(os.getpid()),
            "--rate",
            "50",
            "--format",
            "raw",
            "--output",
            str(output),
            "--nonblocking",
            "--threads",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            err = b""
        if proc.returncode not in (0, -signal.SIGINT) and not output.exists():
            progress(f"bench: py-spy failed: {err.decode(errors='replace').strip()[-300:]}")
        else:
            progress(f"bench: profile of the timed run in {output}")


def _timed_run_alone(
    config: HubConfig,
    consistent: bool,
    expected: int,
    progress: Progress,
    profile: Path | None = None,
) -> _Timed:
    """`_timed_run` in a process of its own, as `cdchub run` runs: spawned (a fresh interpreter
    that imports what a run needs), so its memory figures are the run's, not the bench's (the
    bench process has grown by tens of MB while filling Kafka)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_timed_child,
        args=(config, consistent, expected, profile, send),
        name="cdchub-bench-run",
    )
    child.start()
    send.close()
    try:
        while True:
            if not receive.poll(0.5):
                if not child.is_alive():
                    raise StackError(
                        f"bench: the timed run's process ended without a result "
                        f"(exit code {child.exitcode})"
                    )
                continue
            kind, payload = receive.recv()
            if kind == "progress":
                progress(payload)
            elif kind == "error":
                raise StackError(f"bench: the timed run failed: {payload}")
            else:
                timed: _Timed = payload
                return timed
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()


def _timed_child(
    config: HubConfig, consistent: bool, expected: int, profile: Path | None, send: Any
) -> None:
    """The timed run's process: report progress lines and the result through `send`."""
    try:
        timed = _timed_run(
            config, consistent, expected, lambda line: send.send(("progress", line)), profile
        )
    except BaseException as exc:  # the parent reports it; a traceback here would be lost
        send.send(("error", f"{type(exc).__name__}: {exc}"))
        raise
    send.send(("result", timed))


@dataclass
class CommitClock:
    """When a timed run applied the backlog, and when it last committed.

    The run is timed to the commit that applied the backlog's last event: its data is then
    complete, which is also when the peer's time stops (its tables equal the source). A later
    commit stores only offsets of records produced during the run (the BEGIN/END markers of
    PostgreSQL's heartbeat action query, every 10 s); it is kept as `last_at`.
    """

    expected: int
    applied: int = 0
    # perf_counter and process CPU at the commit that applied the backlog's last event (or the
    # last one that applied any, while the backlog is not all applied).
    complete_at: float = 0.0
    complete_cpu: float = 0.0
    last_at: float = 0.0

    def commit(self, events: int, at: float, cpu: float) -> None:
        """A batch of `events` committed at perf_counter `at`, process CPU `cpu`."""
        self.last_at = at
        if events and self.applied < self.expected:
            self.complete_at, self.complete_cpu = at, cpu
        self.applied += events


def _timed_run(
    config: HubConfig,
    consistent: bool,
    expected: int,
    progress: Progress,
    profile: Path | None = None,
) -> _Timed:
    """(events applied, batches, seconds to the commit of the backlog's last event, split, peak
    RSS MB, ...) of a fresh run (`CommitClock`)."""
    from cdc_consumers.runner import Runner

    sources = [s.model_copy(update={"transaction_consistent": consistent}) for s in config.sources]
    group = f"cdchub-bench-{uuid.uuid4().hex[:8]}"
    run_config = config.model_copy(
        update={"sources": sources, "kafka": config.kafka.model_copy(update={"group_id": group})}
    )
    timers = CatchupTimers()
    clock = CommitClock(expected)

    trace: list[dict[str, Any]] = []
    runner: Runner | None = None

    def on_batch(batch: Any) -> None:
        # The runner hands a batch over once it has committed on its apply thread, which can be
        # a poll later: the clock is set back to the commit.
        since = (dt.datetime.now(dt.UTC) - batch.committed_at).total_seconds()
        clock.commit(batch.events, time.perf_counter() - max(0.0, since), time.process_time())
        parked = sum(a.parked_events for a in runner.assemblers.values()) if runner else 0
        trace.append(
            {
                # Seconds from the run's start to this batch's commit.
                "t": round(clock.last_at - began, 3),
                "applied": clock.applied,
                "batch_events": batch.events,
                "parked": parked,
                "rss_mb": round(_rss_mb("VmRSS"), 1),
                # Flow control's state: how many partitions it holds paused, what the oldest
                # transaction waits for.
                "paused": len(runner._paused) if runner else 0,
                "waiting": "; ".join(runner.waiting_for()[:2]) if runner else "",
            }
        )

    with _session(run_config) as session, _profiler(profile, progress):
        runner = Runner(run_config, session, progress=progress, instrumentation=timers)
        gc.collect()
        rss_before = _rss_mb("VmRSS")
        _reset_peak_rss()
        began = time.perf_counter()
        cpu_began = time.process_time()
        result = runner.run(
            until_idle=3.0,
            max_seconds=600 + expected / 200,
            handle_signals=False,
            on_batch=on_batch,
        )
    seconds = (clock.complete_at or time.perf_counter()) - began
    last_commit_seconds = (clock.last_at or time.perf_counter()) - began
    peak = _rss_mb("VmHWM")
    return _Timed(
        result.events,
        result.batches,
        seconds,
        timers.split(seconds, result.apply_wait_s),
        peak,
        rss_before,
        result.forced_releases,
        int(max((t["parked"] for t in trace), default=0)),
        trace,
        max(0.0, (clock.complete_cpu or time.process_time()) - cpu_began),
        last_commit_seconds,
    )


def _rss_mb(field: str) -> float:
    """This process's resident set now (VmRSS) or at its peak (VmHWM), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    """Start VmHWM afresh, so each timed run reports its own peak (Linux >= 4.0)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _verify(config: HubConfig) -> tuple[bool, list[str]]:
    from ops.verify import verify_all

    with _session(config) as session:
        report = verify_all(session, config)
    failures = [
        f"{t.get('table')}: {t.get('error') or 'differs'}"
        for t in report["tables"]
        if not t.get("ok", False)
    ]
    return bool(report["ok"]), failures


# -- the peer: Debezium's JDBC sink ---------------------------------------------------------


def _fingerprints(conn: Any, schema: str) -> dict[str, tuple[Any, ...]]:
    out = {}
    for table, columns in PEER_FINGERPRINT.items():
        joined = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        query = sql.SQL(
            "SELECT count(*), coalesce(sum(hashtext(concat_ws(':', {cols}))::bigint), 0) FROM {t}"
        ).format(cols=joined, t=sql.Identifier(schema, table))
        try:
            row = conn.execute(query).fetchone()
        except Exception:  # the sink has not created the table yet
            conn.rollback()
            out[table] = (None,)
            continue
        conn.rollback()
        out[table] = tuple(row)
    return out


def _peer(config: HubConfig, events: int, progress: Progress) -> PeerResult:
    from connectors.connect_client import ConnectClient
    from dbschemas.demo_sources import pg_connect
    from infrastructure.stack.layout import StackLayout

    layout = StackLayout(config)
    admin = layout.pg_admin
    with pg_connect(admin, "postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(PEER_DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PEER_DATABASE)))
    with pg_connect(admin, "shop") as conn:
        want = _fingerprints(conn, "public")
    # As for the runs: timed on a quiet machine.
    _wait_settled(progress)
    sink = {
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "tasks.max": "1",
        "topics": ",".join(_data_topics(config)),
        "connection.url": f"jdbc:postgresql://{admin.host}:{admin.port}/{PEER_DATABASE}",
        "connection.username": admin.user,
        "connection.password": admin.password(),
        "insert.mode": "upsert",
        "delete.enabled": "true",
        "primary.key.mode": "record_key",
        "schema.evolution": "basic",
        "collection.name.format": "${source.table}",
        "batch.size": "5000",
        "use.time.zone": "UTC",
    }
    client = ConnectClient(config.connect.url)
    try:
        began = time.monotonic()
        client.put_config(PEER_CONNECTOR, sink)
        progress("bench: Debezium JDBC sink registered; waiting until its tables equal the source")
        last_report = 0.0
        with pg_connect(admin, PEER_DATABASE) as conn:
            while True:
                got = _fingerprints(conn, "public")
                now = time.monotonic()
                if got == want:
                    seconds = now - began
                    return PeerResult(seconds, events / seconds, True)
                status = client.status(PEER_CONNECTOR) or {}
                failed = [t for t in status.get("tasks", []) if t.get("state") == "FAILED"]
                if failed:
                    trace = (failed[0].get("trace") or "").strip().splitlines()
                    raise StackError(
                        f"the JDBC sink failed: {trace[0] if trace else 'no trace'}",
                        component="connect",
                    )
                if now - began > 600 + events / 100:
                    seconds = now - began
                    return PeerResult(seconds, events / seconds, False)
                if now - last_report > 5:
                    last_report = now
                    counts = {t: v[0] for t, v in got.items()}
                    progress(f"bench: JDBC sink rows so far {counts}")
                time.sleep(0.5)
    finally:
        with contextlib.suppress(Exception):
            client.delete(PEER_CONNECTOR)
        client.close()


# -- the command ----------------------------------------------------------------------------


def bench_catchup(
    *,
    events: int,
    warehouse: str = "duckdb",
    transaction_consistent: bool = True,
    compare_consistency: bool = False,
    peer: bool = False,
    profile: Path | None = None,
    progress: Progress = print,
) -> list[CatchupResult]:
    """Fill Kafka through Debezium, time a fresh run draining it, verify, optionally time the peer.

    One result per timed run: the `transaction_consistent` mode, then with `compare_consistency` the
    other mode on the same backlog (a fresh warehouse and consumer group each). The peer's figures
    go on every result.
    """
    modes = [transaction_consistent]
    if compare_consistency:
        modes.append(not transaction_consistent)
    results = []
    with _private_stack(warehouse, progress) as config:
        backlog = _fill(config, events, progress)
        kafka_bytes = _topic_bytes(config, _data_topics(config))
        for index, consistent in enumerate(modes):
            fresh = _fresh_warehouse(config, index)
            settle_s, settled_cores = _wait_settled(progress)
            load_before = _load()
            busy_before = _busy_cpu_s()
            children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            progress(
                f"bench: timing a fresh cdchub run, transaction consistency "
                f"{'on' if consistent else 'off'} (load {load_before})"
            )
            timed = _timed_run_alone(
                fresh, consistent, backlog.events, progress, profile if index == 0 else None
            )
            applied, seconds = timed.applied, timed.seconds
            load_after = _load()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            run_process_cpu = (children.ru_utime - children_before.ru_utime) + (
                children.ru_stime - children_before.ru_stime
            )
            # Everything else the machine did while the run's process lived (the stack's JVMs
            # and servers; this process only waits).
            others_cpu = max(0.0, _busy_cpu_s() - busy_before - run_process_cpu)
            progress(f"bench: run done in {seconds:.1f} s; verifying against the source")
            ok, failures = _verify(fresh)
            notes = []
            if applied != backlog.events:
                notes.append(
                    f"the run applied {applied:,} events, the backlog holds {backlog.events:,}"
                )
            results.append(
                CatchupResult(
                    warehouse=warehouse,
                    transaction_consistent=consistent,
                    events=backlog.events,
                    snapshot_rows=backlog.snapshot_rows,
                    transactions=backlog.transactions,
                    kafka_records=backlog.records,
                    kafka_bytes=kafka_bytes,
                    fill_seconds=backlog.fill_s,
                    produce_seconds=backlog.produce_s,
                    applied_events=applied,
                    batches=timed.batches,
                    seconds=seconds,
                    events_per_s=applied / seconds if seconds else 0.0,
                    peak_rss_mb=timed.peak_rss_mb,
                    rss_before_run_mb=timed.rss_before_mb,
                    split=timed.split,
                    forced_releases=timed.forced_releases,
                    peak_parked_events=int(timed.peak_parked),
                    cpu_seconds=round(timed.cpu_seconds, 2),
                    last_commit_seconds=timed.last_commit_seconds,
                    batch_trace=timed.trace,
                    verify_ok=ok,
                    verify_failures=failures,
                    load_before=load_before,
                    load_after=load_after,
                    settle_seconds=round(settle_s, 1),
                    settled_cores=round(settled_cores, 3),
                    others_cpu_seconds=round(others_cpu, 2),
                    warehouse_settings=_warehouse_settings(fresh),
                    notes=notes,
                )
            )
        if peer:
            peer_result = _peer(config, backlog.events, progress)
            for result in results:
                result.peer = peer_result
                result.speedup_over_peer = result.events_per_s / peer_result.events_per_s
        return results


def _warehouse_settings(config: HubConfig) -> dict[str, str | None]:
    """The DuckDB settings the run used (the config's defaults, as `cdchub run` has them)."""
    warehouse = config.warehouse
    if isinstance(warehouse, DuckDBWarehouse):
        return {
            "memory_limit": warehouse.memory_limit,
            "checkpoint_threshold": warehouse.checkpoint_threshold,
        }
    return {}


def _fresh_warehouse(config: HubConfig, index: int) -> HubConfig:
    """The config with a warehouse no run has written to (run `index` of this bench)."""
    if index == 0:
        return config
    warehouse = config.warehouse
    if isinstance(warehouse, DuckDBWarehouse):
        path = warehouse.path.with_name(f"warehouse-{index}.duckdb")
        return config.model_copy(update={"warehouse": warehouse.model_copy(update={"path": path})})
    # PostgreSQL: a new database of the stack's cluster, owned by the warehouse user.
    from dbschemas.demo_sources import pg_connect
    from infrastructure.stack.layout import StackLayout

    layout = StackLayout(config)
    database = f"{warehouse.database}_{index}"
    with pg_connect(layout.pg_admin, "postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(layout.pg_warehouse.user)
            )
        )
    return config.model_copy(
        update={"warehouse": warehouse.model_copy(update={"database": database})}
    )
