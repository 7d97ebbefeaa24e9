"""The runner's real loop over an in-memory stream: Kafka as the buffer, restarts, liveness.

Records are real Debezium envelopes (captured from the stack, tests/fixtures) re-keyed into a workload
of multi-table transactions. The oracle is the workload itself: the last image of every key, and the
set of transactions — at every commit, each transaction is either wholly in the history or not at all.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cdc_consumers.runner import Runner
from connectors.warehouses.duckdb.client import DuckDBSession
from core.config import DuckDBWarehouse, HubConfig, KafkaConfig, SourceConfig
from core.model import StreamRecord
from core.stream import ChangeStream, Partition
from merge.ledger import PARKED_FOR_TRANSACTION, Checkpoint
from merge.scd2 import Scd2Engine
from tests.memory_stream import MemoryStream
from tests.unit.envelope_records import ENVELOPES

BASE_MS = 1_795_628_428_577
TABLES = {"orders": ("order_id", "status"), "customers": ("customer_id", "full_name")}


@dataclass
class Workload:
    """Transactions written to the stream; what the warehouse must end up holding."""

    stream: MemoryStream = field(default_factory=MemoryStream)
    lsn: int = 27_000_000
    last_commit: int = 26_999_000
    tx: int = 700
    latest: dict[tuple[str, int], str] = field(default_factory=dict)
    tx_rows: dict[int, list[tuple[str, int, str]]] = field(default_factory=dict)
    pending: list[tuple[str, bytes, bytes]] = field(default_factory=list)

    def transaction(self, changes: list[tuple[str, int, str]], *, flush: bool = True) -> int:
        """One source transaction: (table, key, value) upserts, then its END record."""
        self.tx += 1
        out = []
        for order, (table, key, value) in enumerate(changes, start=1):
            self.lsn += 100
            out.append((f"shop.public.{table}", *_envelope(table, key, value, self, order)))
            self.latest[(table, key)] = value
        self.tx_rows[self.tx] = list(changes)
        end = {
            "status": "END",
            "id": f"{self.tx}:{self.lsn}",
            "event_count": len(changes),
            "ts_ms": BASE_MS,
            "data_collections": [
                {"data_collection": f"public.{t}", "event_count": n}
                for t, n in sorted(Counter(t for t, _, _ in changes).items())
            ],
        }
        out.append(("shop.transaction", json.dumps({"id": self.tx}).encode(), _json(end)))
        self.last_commit = self.lsn
        self.pending.extend(out)
        if flush:
            self.flush()
        return self.tx

    def heartbeat(self) -> None:
        """The END of a transaction without captured rows (PostgreSQL's heartbeat action query)."""
        self.tx += 1
        self.lsn += 100
        end = {"status": "END", "id": f"{self.tx}:{self.lsn}", "event_count": 0, "ts_ms": BASE_MS}
        self.stream.append("shop.transaction", None, _json(end))

    def flush(self, rng: random.Random | None = None) -> None:
        """Write the pending records; with `rng`, topics are filled in a shuffled interleaving."""
        items = self.pending
        self.pending = []
        if rng is None:
            for topic, key, value in items:
                self.stream.append(topic, key, value)
            return
        # Per topic the order is kept (a Kafka partition is in commit order); across topics not.
        queues: dict[str, list[tuple[bytes, bytes]]] = {}
        for topic, key, value in items:
            queues.setdefault(topic, []).append((key, value))
        while queues:
            topic = rng.choice(sorted(queues))
            key, value = queues[topic].pop(0)
            self.stream.append(topic, key, value)
            if not queues[topic]:
                del queues[topic]


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps({"schema": {}, "payload": doc}, separators=(",", ":")).encode()


def _envelope(table: str, key: int, value: str, w: Workload, order: int) -> tuple[bytes, bytes]:
    raw = ENVELOPES[f"shop.public.{table}.c"]
    pk, column = TABLES[table]
    doc = json.loads(raw["value"])
    payload = doc["payload"]
    payload["after"] = copy.deepcopy(payload["after"])
    payload["after"][pk] = key
    payload["after"][column] = value
    source = payload["source"]
    source["txId"] = w.tx
    source["lsn"] = w.lsn
    source["sequence"] = json.dumps([str(w.last_commit), str(w.lsn)])
    ms = BASE_MS + (w.lsn - 27_000_000) // 100
    source["ts_ms"], source["ts_us"], source["ts_ns"] = ms, ms * 1000, ms * 1_000_000
    payload["transaction"] = {"id": f"{w.tx}:{w.lsn}", "total_order": order}
    key_doc = json.loads(raw["key"])
    key_doc["payload"] = {pk: key}
    compact = (",", ":")  # the JSON converter's layout, which the decoder relies on
    return json.dumps(key_doc, separators=compact).encode(), json.dumps(
        doc, separators=compact
    ).encode()


def _config(path: Path, **kafka: Any) -> HubConfig:
    return HubConfig(
        sources=[
            SourceConfig(
                name="shop", kind="postgres", port=1, database="shop", user="u", password="p"
            )
        ],
        warehouse=DuckDBWarehouse(path=path),
        kafka=KafkaConfig(**{"batch_max_wait_ms": 0, **kafka}),
    )


def _runner(config: HubConfig, session: DuckDBSession, stream: MemoryStream) -> Runner:
    return Runner(config, session, progress=lambda _m: None, stream_factory=stream.factory())


def _current(session: DuckDBSession) -> dict[tuple[str, int], str]:
    out = {}
    for table, (pk, column) in TABLES.items():
        try:
            rows = session.conn.execute(f"SELECT {pk}, {column} FROM shop.{table}").fetchall()
        except Exception:
            continue
        out.update({(table, k): v for k, v in rows})
    return out


def _history_txs(session: DuckDBSession) -> dict[int, int]:
    """Per source transaction, how many of its rows the history holds."""
    counts: dict[int, int] = {}
    for table in TABLES:
        try:
            rows = session.conn.execute(
                f"SELECT _cdc_tx_id, count(*) FROM shop.{table}_history GROUP BY 1"
            ).fetchall()
        except Exception:
            continue
        for tx, n in rows:
            counts[int(tx)] = counts.get(int(tx), 0) + n
    return counts


def test_heartbeat_markers_are_not_activity_and_do_not_block(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    w = Workload()
    w.transaction([("orders", 1, "paid")])
    config = _config(tmp_path / "wh.duckdb")
    runner = _runner(config, warehouse, w.stream)
    # A heartbeat END before every poll, forever (as PostgreSQL's action query every 10 s): the run
    # must still go idle, because no row change was decoded.
    w.stream.before_poll = lambda s: w.heartbeat()
    result = runner.run(until_idle=0.3, max_seconds=20, handle_signals=False)
    assert result.stopped_by == "idle"
    assert _current(warehouse) == {("orders", 1): "paid"}
    # Its offsets moved forward with the heartbeats: consumer lag reads 0 when it is 0.
    ends = w.stream.end_offsets(w.stream.logs)
    stored = Scd2Engine(warehouse, "cdchub").stored_checkpoints()
    assert all(stored[(p.topic, p.partition)] >= ends[p] - 1 for p in ends)


def test_a_transaction_missing_an_event_is_released_once_its_source_is_read_to_the_end(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    w = Workload()
    w.transaction([("orders", 1, "paid"), ("customers", 7, "Ann")], flush=False)
    # Lose the customers event: its END says 2 events, only 1 will ever arrive.
    w.pending = [p for p in w.pending if p[0] != "shop.public.customers"]
    w.flush()
    w.transaction([("orders", 2, "new")])
    config = _config(tmp_path / "wh.duckdb", transaction_timeout_s=0.5)
    w.stream.before_poll = lambda s: w.heartbeat()  # markers flow all along
    result = _runner(config, warehouse, w.stream).run(
        until_idle=0.2, max_seconds=20, handle_signals=False
    )
    assert result.stopped_by == "idle"
    assert result.forced_releases == 1
    assert _current(warehouse) == {("orders", 1): "paid", ("orders", 2): "new"}
    forced = warehouse.conn.execute(
        "SELECT source, events_arrived, events_expected, reason FROM _cdchub.forced_releases"
    ).fetchall()
    assert forced == [("shop", 1, 2, "stalled")]


def test_an_incomplete_transaction_is_not_released_while_its_source_is_behind(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    w = Workload()
    w.transaction([("orders", 1, "paid"), ("customers", 7, "Ann")])
    config = _config(tmp_path / "wh.duckdb", transaction_timeout_s=0.01)
    stream = w.stream
    customers = next(p for p in stream.logs if p.topic == "shop.public.customers")
    stream.slow.add(customers)  # the consumer reads the customers topic far behind the others
    batches: list[Any] = []
    runner = _runner(config, warehouse, stream)
    result = runner.run(
        until_idle=0.2, max_seconds=1.0, handle_signals=False, on_batch=batches.append
    )
    assert result.stopped_by == "max-seconds"
    assert result.forced_releases == 0 and _current(warehouse) == {}
    assert any("transaction" in line and "1 of 2" in line for line in result.waiting)
    stream.slow.clear()  # its records arrive: the transaction completes, whole
    result = runner.run(until_idle=0.2, max_seconds=20, handle_signals=False)
    assert result.stopped_by == "idle" and result.forced_releases == 0
    assert _current(warehouse) == {("orders", 1): "paid", ("customers", 7): "Ann"}


@pytest.mark.parametrize("seed", range(6))
def test_restarts_re_read_parked_transactions_from_kafka_and_never_tear_or_double(
    tmp_path: Path, warehouse: DuckDBSession, seed: int
) -> None:
    rng = random.Random(seed)
    w = Workload()
    for _ in range(60):
        changes = [
            (rng.choice(sorted(TABLES)), rng.randrange(12), f"v{rng.randrange(1000)}")
            for _ in range(rng.randint(1, 4))
        ]
        w.transaction(changes, flush=False)
        if rng.random() < 0.3:
            w.flush(rng)
            w.heartbeat()
    w.flush(rng)
    config = _config(tmp_path / "wh.duckdb")
    torn: list[dict[int, int]] = []

    def check(_batch: Any) -> None:
        counts = _history_txs(warehouse)
        bad = {tx: n for tx, n in counts.items() if n != len(w.tx_rows[tx])}
        if bad:
            torn.append(bad)

    # Small polls (skewed reads across topics) and a "crash" (a new Runner, a fresh stream
    # position) after a random number of batches, several times.
    w.stream.max_per_poll = rng.randint(2, 7)
    for _ in range(4):
        runner = _runner(config, warehouse, w.stream)
        seen = [0, rng.randint(1, 6)]

        def on_batch(batch: Any, runner: Runner = runner, seen: list[int] = seen) -> None:
            check(batch)
            seen[0] += 1
            if seen[0] >= seen[1]:
                runner.request_stop()

        runner.run(max_seconds=20, handle_signals=False, on_batch=on_batch)
    final = _runner(config, warehouse, w.stream).run(
        until_idle=0.1, max_seconds=30, handle_signals=False, on_batch=check
    )
    assert final.stopped_by == "idle"
    assert torn == []
    assert _current(warehouse) == w.latest
    # Every committed change is one history version (none lost, none doubled).
    history = _history_txs(warehouse)
    assert history == {tx: len(rows) for tx, rows in w.tx_rows.items()}
    assert warehouse.conn.execute("SELECT count(*) FROM _cdchub.parked_records").fetchone() == (0,)


def test_transactions_parked_in_the_warehouse_by_an_older_version_are_given_back_to_kafka(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    w = Workload()
    w.transaction([("orders", 1, "paid"), ("customers", 7, "Ann")])
    config = _config(tmp_path / "wh.duckdb")
    engine = Scd2Engine(warehouse, "cdchub")
    engine.ensure_control()
    # What an older version left: offsets past the records, the records in parked_records.
    ends = w.stream.end_offsets(w.stream.logs)
    engine.apply({}, {}, [Checkpoint(p.topic, p.partition, o) for p, o in ends.items()])
    now = dt.datetime.now(dt.UTC)
    for p, log in w.stream.logs.items():
        for r in log:
            warehouse.conn.execute(
                "INSERT INTO _cdchub.parked_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    "cdchub",
                    p.topic,
                    p.partition,
                    r.offset,
                    0,
                    r.key,
                    r.value,
                    now,
                    PARKED_FOR_TRANSACTION,
                ],
            )
    result = _runner(config, warehouse, w.stream).run(
        until_idle=0.1, max_seconds=20, handle_signals=False
    )
    assert result.stopped_by == "idle"
    assert _current(warehouse) == {("orders", 1): "paid", ("customers", 7): "Ann"}
    assert warehouse.conn.execute("SELECT count(*) FROM _cdchub.parked_records").fetchone() == (0,)


def test_a_second_run_on_the_same_runner_does_not_keep_transactions_parked(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    """The demo's cold-start hang: `run()` stopped with transactions parked, then `run()` again."""
    w = Workload()
    w.transaction([("orders", 1, "paid"), ("customers", 7, "Ann")], flush=False)
    w.transaction([("orders", 2, "new")], flush=False)
    w.pending = sorted(w.pending, key=lambda p: p[0] != "shop.public.orders")  # orders topic first
    w.flush()
    config = _config(tmp_path / "wh.duckdb")
    w.stream.max_per_poll = 2
    runner = _runner(config, warehouse, w.stream)
    runner.run(max_seconds=20, handle_signals=False, on_batch=lambda _b: runner.request_stop())
    w.stream.before_poll = lambda s: w.heartbeat()
    result = runner.run(until_idle=0.2, max_seconds=20, handle_signals=False)
    assert result.stopped_by == "idle", result.waiting
    assert _current(warehouse) == {
        ("orders", 1): "paid",
        ("customers", 7): "Ann",
        ("orders", 2): "new",
    }


def _race(w: Workload, customers_prefix: int, transactions: int) -> None:
    """A customers topic far behind: single-table transactions first, then two-table ones."""
    for i in range(customers_prefix):
        w.transaction([("customers", 10_000 + i, f"c{i}")])
    for i in range(transactions):
        w.transaction([("orders", i, f"o{i}"), ("customers", i, f"n{i}")])


def _racing() -> tuple[Workload, MemoryStream, Partition, Partition]:
    """`_race`'s workload on a stream read five records a poll; its customers and orders topics."""
    w = Workload()
    _race(w, customers_prefix=300, transactions=120)
    stream = w.stream
    stream.max_per_poll = 5
    customers = next(p for p in stream.logs if p.topic == "shop.public.customers")
    orders = next(p for p in stream.logs if p.topic == "shop.public.orders")
    return w, stream, customers, orders


def test_flow_control_pauses_the_topics_ahead_and_bounds_the_parked_events(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    w, stream, customers, orders = _racing()
    # The customers topic is read at half the others' pace: without flow control every
    # two-table transaction would wait parked for its customers event.
    stream.before_poll = lambda s: s.slow.symmetric_difference_update({customers})
    config = _config(tmp_path / "wh.duckdb", batch_max_events=20)  # pauses from 10 parked
    runner = _runner(config, warehouse, stream)
    peak = 0

    def watch(_batch: Any) -> None:
        nonlocal peak
        peak = max(peak, runner.assemblers["shop"].parked_events)

    result = runner.run(until_idle=0.2, max_seconds=60, handle_signals=False, on_batch=watch)
    assert result.stopped_by == "idle" and result.forced_releases == 0
    assert orders in stream.paused_ever and customers not in stream.paused_ever
    assert not stream.paused  # all resumed once the backlog was gone
    assert peak < 40, peak  # 10 + what a few polls add; it was 120 without flow control
    assert _current(warehouse) == w.latest
    assert all(n == len(w.tx_rows[tx]) for tx, n in _history_txs(warehouse).items())


def test_a_rebalance_while_flow_control_holds_a_partition_paused_does_not_stall_it(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    """A topic created mid-run (a new table's snapshot) rebalances the group; kafka-python keeps
    the pause of a partition it keeps. The run must still read that partition to its end."""
    w, stream, customers, orders = _racing()
    created = []
    config = _config(tmp_path / "wh.duckdb", batch_max_events=20)  # pauses from 10 parked
    runner = _runner(config, warehouse, stream)

    def before_poll(s: MemoryStream) -> None:
        s.slow.symmetric_difference_update({customers})
        # New tables' topics appear (a tombstone each: no row) while orders is held paused and
        # fewer events are parked than would pause it again (flow control's bound is 10).
        parked = runner.assemblers["shop"].parked_events
        if orders in s.paused and parked < 10 and len(created) < 40:
            created.append(s.append(f"shop.public.new_{len(created)}", None, None))

    stream.before_poll = before_poll
    result = runner.run(until_idle=0.2, max_seconds=20, handle_signals=False)
    assert created, "flow control never paused the orders topic: the test proves nothing"
    assert result.stopped_by == "idle", result.waiting
    assert _current(warehouse) == w.latest


def test_a_partition_the_client_stopped_fetching_is_fetched_again(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    """A consumer-client defect that leaves a partition unfetched (paused without flow control
    having paused it) must not stall the run: after `STALL_S` it is fetched again."""
    w = Workload()
    for i in range(30):
        w.transaction([("orders", i, f"o{i}"), ("customers", i, f"n{i}")])
    stream = w.stream
    stream.max_per_poll = 5
    orders = next(p for p in stream.logs if p.topic == "shop.public.orders")

    def lose(s: MemoryStream) -> None:
        if s.polls == 0:
            s.paused.add(orders)  # behind the runner's back

    stream.before_poll = lose
    runner = _runner(_config(tmp_path / "wh.duckdb"), warehouse, stream)
    runner.STALL_S = 0.5
    result = runner.run(until_idle=0.2, max_seconds=20, handle_signals=False)
    assert result.stopped_by == "idle", result.waiting
    assert _current(warehouse) == w.latest


def test_a_consumer_that_reads_nothing_while_records_wait_is_replaced(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    """A consumer that lost its place in the group (seen under load with kafka-python 3.0) reads
    nothing while the broker holds records for it: after `STALL_S` the run replaces it, and the
    new one goes on from the run's positions, nothing lost or doubled."""
    w = Workload()
    for i in range(40):
        w.transaction([("orders", i, f"o{i}"), ("customers", i, f"n{i}")])
    made = []

    class Deaf(MemoryStream):
        deaf = False

        def poll(self, max_records: int, timeout_ms: int) -> list[StreamRecord]:
            if self.polls >= 3 and len(made) == 1:
                self.deaf = True
            if self.deaf:
                self.polls += 1
                return []
            return super().poll(max_records, timeout_ms)

    stream = Deaf(max_per_poll=5)
    stream.logs = w.stream.logs
    fresh = stream.factory()

    def factory() -> ChangeStream:
        made.append(1)
        stream.deaf = False
        return fresh()

    config = _config(tmp_path / "wh.duckdb")
    runner = Runner(config, warehouse, progress=lambda _m: None, stream_factory=factory)
    runner.STALL_S = 0.5
    result = runner.run(until_idle=0.2, max_seconds=20, handle_signals=False)
    assert len(made) == 2, "the deaf consumer was not replaced"
    assert result.stopped_by == "idle", result.waiting
    assert _current(warehouse) == w.latest
    assert all(n == len(w.tx_rows[tx]) for tx, n in _history_txs(warehouse).items())


def test_flow_control_never_stalls_a_transaction_whose_events_are_lost(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    w = Workload()
    w.transaction([("orders", 1, "paid"), ("customers", 7, "Ann")], flush=False)
    w.pending = [p for p in w.pending if p[0] != "shop.public.customers"]  # lost for good
    w.flush()
    for i in range(2, 60):
        w.transaction([("orders", i, f"o{i}"), ("customers", i, f"n{i}")])
    w.stream.max_per_poll = 5
    config = _config(tmp_path / "wh.duckdb", batch_max_events=20, transaction_timeout_s=0.3)
    result = _runner(config, warehouse, w.stream).run(
        until_idle=0.2, max_seconds=30, handle_signals=False
    )
    # Pausing the orders topic must not keep the source from being read to its end (the evidence
    # the stall rule needs): the transaction is released once, and everything else is whole.
    assert result.stopped_by == "idle" and result.forced_releases == 1
    assert _current(warehouse) == w.latest  # ("customers", 7) was written again by a later one


def test_a_batch_does_not_wait_for_company_the_probe_knows_is_held(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    """Records the last probe saw wait in a partition the polls do not bring (flow control holds
    it until the batch ends): a batch's polls after its first record must not wait out the batch
    wait for them, only a fetch's round trip (measured: ~1 s of a catch-up's last seconds)."""
    from cdc_consumers.runner import CATCH_UP_POLL_MS

    w = Workload()
    for i in range(30):
        w.transaction([("orders", i, f"o{i}"), ("customers", i, f"n{i}")])

    class Recording(MemoryStream):
        def __init__(self) -> None:
            super().__init__(max_per_poll=5)
            self.probes = 0
            # (timeout asked, records returned, a partition held, probed before)
            self.calls: list[tuple[int, int, bool, bool]] = []

        def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
            self.probes += 1
            return super().end_offsets(partitions)

        def poll(self, max_records: int, timeout_ms: int) -> list[StreamRecord]:
            held, probed = bool(self.slow), self.probes > 0
            out = super().poll(max_records, timeout_ms)
            self.calls.append((timeout_ms, len(out), held, probed))
            return out

    stream = Recording()
    stream.logs = w.stream.logs
    orders = next(p for p in stream.logs if p.topic == "shop.public.orders")
    stream.slow.add(orders)

    def trickle(s: MemoryStream) -> None:
        # A change now and then on another table (batches end between them), until the held
        # partition is let go.
        if s.polls >= 60:
            s.slow.clear()
        elif s.polls % 3 == 0:
            w.transaction([("customers", 1000 + s.polls, f"t{s.polls}")])

    stream.before_poll = trickle
    # A long batch wait, and a backlog far below a batch: the batches are not catching up.
    runner = _runner(_config(tmp_path / "wh.duckdb", batch_max_wait_ms=5000), warehouse, stream)
    runner.PROBE_INTERVAL_S = 0.0  # the polls take microseconds here: probe after every batch
    result = runner.run(until_idle=0.2, max_seconds=20, handle_signals=False)
    assert result.stopped_by == "idle", result.waiting
    assert _current(warehouse) == w.latest
    # A poll that follows one with records belongs to the same batch.
    following = [
        timeout
        for (_, n, _, _), (timeout, _, held, probed) in zip(
            stream.calls, stream.calls[1:], strict=False
        )
        if n and held and probed
    ]
    assert following, "no batch polled past its first records while the partition was held"
    assert max(following) <= CATCH_UP_POLL_MS, following


def test_the_probe_does_not_ask_the_cluster_for_topics_while_records_flow(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    """Asking the cluster for its topics blocks the consumer's thread a round trip; while batches
    bring records the probe reads the client's view of the subscription instead, and asks the
    cluster only when a poll came back empty (an idle decision needs the latest topics)."""
    w = Workload()
    for i in range(40):
        w.transaction([("orders", i, f"o{i}"), ("customers", i, f"n{i}")])

    class Recording(MemoryStream):
        last_polled = 0
        asked_after_records = 0

        def poll(self, max_records: int, timeout_ms: int) -> list[StreamRecord]:
            out = super().poll(max_records, timeout_ms)
            self.last_polled = len(out)
            return out

        def topics(self) -> set[str]:
            if self.last_polled:
                self.asked_after_records += 1
            return super().topics()

    stream = Recording(max_per_poll=5)
    stream.logs = w.stream.logs
    # Every batch ends at its size (10 events), so the probe after it follows records.
    runner = _runner(_config(tmp_path / "wh.duckdb", batch_max_events=10), warehouse, stream)
    runner.PROBE_INTERVAL_S = 0.0
    result = runner.run(until_idle=0.2, max_seconds=20, handle_signals=False)
    assert result.stopped_by == "idle", result.waiting
    assert _current(warehouse) == w.latest
    assert stream.topic_requests > 0, "idle was decided without asking the cluster"
    assert stream.asked_after_records == 0


def test_kafka_commits_between_batches_are_not_waited_for_but_the_last_one_is(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    """The courtesy commit of the low-water marks to Kafka costs the consumer's thread a round
    trip per batch if waited for; only the run's last one must be (lag tools read 0 after it)."""
    w = Workload()
    for i in range(20):
        w.transaction([("orders", i, f"o{i}"), ("customers", i, f"n{i}")])
    stream = w.stream
    stream.max_per_poll = 5
    runner = _runner(_config(tmp_path / "wh.duckdb", batch_max_events=10), warehouse, stream)
    result = runner.run(until_idle=0.2, max_seconds=20, handle_signals=False)
    assert result.stopped_by == "idle", result.waiting
    assert len(stream.commits) > 2
    assert stream.commits[-1] is True
    assert not any(stream.commits[:-1])
    ends = {p: log[-1].offset + 1 for p, log in stream.logs.items()}
    assert stream.committed == ends


def test_the_batch_after_a_catch_up_does_not_wait_for_company(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    """The last batch of a catch-up (less than a batch waits in Kafka any more) ends on its first
    empty poll like the catch-up batches before it, rather than waiting out the batch wait for
    records that are not coming (0.5 s of a ~10 s catch-up, measured)."""
    from cdc_consumers.runner import CATCH_UP_POLL_MS

    w = Workload()
    for i in range(60):
        w.transaction([("orders", i, f"o{i}"), ("customers", i, f"n{i}")])

    class Recording(MemoryStream):
        def __init__(self) -> None:
            super().__init__()  # a poll takes all it may: the last batch drains Kafka at once
            self.probes = 0
            # (timeout asked, records returned, probed before)
            self.calls: list[tuple[int, int, bool]] = []

        def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
            self.probes += 1
            return super().end_offsets(partitions)

        def poll(self, max_records: int, timeout_ms: int) -> list[StreamRecord]:
            probed = self.probes > 0
            out = super().poll(max_records, timeout_ms)
            self.calls.append((timeout_ms, len(out), probed))
            return out

    stream = Recording()
    stream.logs = w.stream.logs
    config = _config(tmp_path / "wh.duckdb", batch_max_events=40, batch_max_wait_ms=5000)
    runner = _runner(config, warehouse, stream)
    runner.PROBE_INTERVAL_S = 0.0  # the polls take microseconds here: probe after every batch
    result = runner.run(until_idle=0.2, max_seconds=20, handle_signals=False)
    assert result.stopped_by == "idle", result.waiting
    assert _current(warehouse) == w.latest
    # A poll that follows one with records belongs to the same batch; once the first probe has
    # seen the backlog, every such poll here is in a catch-up or in the batch right after one.
    following = [
        t
        for (_, n, _), (t, _, probed) in zip(stream.calls, stream.calls[1:], strict=False)
        if n and probed
    ]
    assert following
    assert max(following) <= CATCH_UP_POLL_MS, following


def test_a_run_hands_the_gil_over_quickly_and_restores_the_interval(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    """`procpolicy`: the apply thread takes the GIL back after each statement within 1 ms, not 5."""
    import sys

    from cdc_consumers import procpolicy

    w = Workload()
    w.transaction([("orders", 1, "paid")])
    runner = _runner(_config(tmp_path / "wh.duckdb"), warehouse, w.stream)
    before = sys.getswitchinterval()
    seen: list[float] = []
    result = runner.run(
        until_idle=0.2,
        max_seconds=20,
        handle_signals=False,
        on_batch=lambda _b: seen.append(sys.getswitchinterval()),
    )
    assert result.stopped_by == "idle" and seen
    assert all(s == procpolicy.SWITCH_INTERVAL_S for s in seen)
    assert sys.getswitchinterval() == before


def test_a_committed_batch_is_freed_on_the_apply_thread(
    tmp_path: Path, warehouse: DuckDBSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Freeing a batch's events (tens of thousands of objects in a catch-up) is the apply
    thread's work: the main thread keeps no reference to a batch it handed over."""
    import threading

    from cdc_consumers import runner as runner_module

    freed_on: list[str] = []

    class WatchedBatch(runner_module._Batch):
        def __del__(self) -> None:
            if self.events:
                freed_on.append(threading.current_thread().name)

    monkeypatch.setattr(runner_module, "_Batch", WatchedBatch)
    w = Workload()
    for n in range(3):
        w.transaction([("orders", n, "paid"), ("customers", n, "gold")])
    runner = _runner(_config(tmp_path / "wh.duckdb"), warehouse, w.stream)
    result = runner.run(until_idle=0.2, max_seconds=20, handle_signals=False)
    assert result.stopped_by == "idle" and result.events == 6
    assert freed_on and all(name.startswith("cdchub-apply") for name in freed_on), freed_on
