"""The span tree and metrics of one real batch: captured Debezium envelopes, decoded and merged into
DuckDB by the real Runner/Scd2Engine path, traced into an in-memory exporter."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from cdc_consumers.runner import Runner
from connectors.warehouses.duckdb.client import DuckDBSession
from observability.telemetry import build_telemetry
from ops.tracing import RunInstrumentation
from tests.configs import hub_config, source
from tests.memory_stream import MemoryStream
from tests.unit.envelope_records import ENVELOPES, Record, make_record


@dataclass
class Traced:
    runner: Runner
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    warehouse: Path


class _NoHeartbeats:
    def heartbeat_times(self, sources: Any) -> dict[str, float]:
        return {}

    def close(self) -> None:
        pass


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[Traced]:
    config = hub_config(tmp_path / "wh.duckdb", source("shop"), source("inventory", "mariadb"))
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = build_telemetry(
        config.observability,
        span_processors=[SimpleSpanProcessor(spans)],
        metric_readers=[metrics],
        serve_prometheus=False,
    )
    session = DuckDBSession(config.warehouse.path)
    # No broker in unit tests: heartbeat questions get "none seen" instead of a 30 s bootstrap timeout.
    instrumentation = RunInstrumentation(telemetry, config, probe=_NoHeartbeats())  # type: ignore[arg-type]
    runner = Runner(config, session, progress=lambda _m: None, instrumentation=instrumentation)
    yield Traced(runner, spans, metrics, config.warehouse.path)
    session.close()
    telemetry.shutdown()


def _apply(runner: Runner, records: list[Record]) -> Any:
    """Run the runner's real loop over these records (one batch) through an in-memory stream."""
    stream = getattr(runner, "_test_stream", None)
    if stream is None:
        stream = runner._test_stream = MemoryStream()  # type: ignore[attr-defined]
        runner.stream_factory = stream.factory()
    for record in records:
        stream.append_record(record)
    batches: list[Any] = []
    runner.run(until_idle=0, handle_signals=False, on_batch=batches.append)
    assert len(batches) == 1
    return batches[0]


STREAMED = [
    "shop.public.orders.u",
    "shop.public.orders.c",
    "shop.public.orders.d",
    "shop.public.orders.tombstone",
    "shop.public.customers.c",
    "inventory.inventory.shipments.u",
    "inventory.inventory.shipments.c",
]


def _children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def _metric_points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_span_tree_of_one_batch(traced: Traced) -> None:
    records = [make_record(name) for name in STREAMED]
    batch = _apply(traced.runner, records)
    spans = traced.spans.get_finished_spans()
    # The control tables' DDL commits once before the first batch, outside it.
    roots = [s for s in spans if s.parent is None and s.name != "COMMIT"]
    assert [r.name for r in roots] == ["process batch"]
    root = roots[0]
    assert root.kind is SpanKind.CONSUMER
    assert root.attributes["messaging.system"] == "kafka"
    assert root.attributes["messaging.consumer.group.name"] == "cdchub"
    assert root.attributes["messaging.batch.message_count"] == len(records)
    batch_spans = [s for s in spans if s.parent is not None or s is root]
    assert all(s.context.trace_id == root.context.trace_id for s in batch_spans)

    spans = tuple(batch_spans)
    children = _children(spans, root)
    names = Counter(s.name for s in children)
    # DDL of new tables commits in its own transactions before the batch's one: COMMIT ≥ 1.
    assert names["receive"] == 1 and names["decode"] == 1 and names["COMMIT"] >= 1
    merges = {s.name for s in children if s.name.startswith("MERGE ")}
    assert merges == {
        "MERGE shop.orders_history",
        "MERGE shop.customers_history",
        "MERGE inventory.shipments_history",
    }
    order = [s.name.split(" ")[0] for s in sorted(children, key=lambda s: s.start_time)]
    assert (
        order.index("decode") < order.index("MERGE") < len(order) - 1 - order[::-1].index("MERGE")
    )
    assert order[-1] == "COMMIT"  # the batch's own commit closes it

    for merge in (s for s in children if s.name.startswith("MERGE ")):
        assert merge.kind is SpanKind.CLIENT
        assert merge.attributes["db.system.name"] == "duckdb"
        assert merge.attributes["db.operation.name"] == "MERGE"
        assert merge.name == f"MERGE {merge.attributes['db.collection.name']}"

    receive = next(s for s in children if s.name == "receive")
    per_partition = _children(spans, receive)
    expected: dict[str, list[int]] = {}
    for r in records:
        expected.setdefault(r.topic, []).append(r.offset)
    assert {s.attributes["messaging.destination.name"] for s in per_partition} == set(expected)
    for s in per_partition:
        topic = s.attributes["messaging.destination.name"]
        assert s.attributes["messaging.destination.partition.id"] == "0"
        assert s.attributes["messaging.kafka.offset"] == min(expected[topic])
        assert s.attributes["cdchub.kafka.offset.last"] == max(expected[topic])

    # The batch span leads to the warehouse record and to the source transactions it applied.
    conn = duckdb.connect(str(traced.warehouse), read_only=False)
    try:
        logged = conn.execute("SELECT DISTINCT batch_id FROM _cdchub.batches").fetchall()
        tx_ids = set()
        for schema, table in conn.execute(
            "SELECT warehouse_schema, history_table FROM _cdchub.tables"
        ).fetchall():
            tx_ids |= {
                r[0]
                for r in conn.execute(f'SELECT _cdc_tx_id FROM "{schema}"."{table}"').fetchall()
            }
        offsets = conn.execute(
            "SELECT topic, next_offset FROM _cdchub.batch_offsets WHERE batch_id = ?",
            [batch.batch_id],
        ).fetchall()
    finally:
        conn.close()
    assert logged == [(root.attributes["cdchub.batch.id"],)]
    assert set(root.attributes["cdchub.source.transaction_ids"]) == {t for t in tx_ids if t}
    assert dict(offsets) == {t: max(o) + 1 for t, o in expected.items()}

    lags = [lag for t in batch.tables for lag in t.lags_ms]
    assert root.attributes["cdchub.lag.events"] == len(lags) > 0
    assert root.attributes["cdchub.lag.min_ms"] == min(lags)
    assert root.attributes["cdchub.lag.max_ms"] == max(lags)
    assert min(lags) <= root.attributes["cdchub.lag.p50_ms"] <= root.attributes["cdchub.lag.p99_ms"]


def test_metrics_of_one_batch(traced: Traced) -> None:
    records = [make_record(name) for name in STREAMED]
    batch = _apply(traced.runner, records)
    applied = {
        (p.attributes["table"], p.attributes["op"]): p.value
        for p in _metric_points(traced.metrics, "cdchub.events.applied")
    }
    # Oracle: the op codes in the captured envelopes themselves (tombstones carry no event).
    expected: Counter[tuple[str, str]] = Counter()
    for name in STREAMED:
        value = ENVELOPES[name]["value"]
        if value is not None:
            payload = json.loads(value)["payload"]
            source = payload["source"]
            table = f"{source.get('schema') or source['db']}.{source['table']}"
            expected[(table, payload["op"])] += 1
    assert applied == dict(expected)
    lag_points = _metric_points(traced.metrics, "cdchub.replication.lag")
    assert sum(p.count for p in lag_points) == sum(len(t.lags_ms) for t in batch.tables)
    assert all(p.min >= 0 for p in lag_points)
    dlq = _metric_points(traced.metrics, "cdchub.dlq.events")
    assert [p.value for p in dlq] == [0]
    assert [p.count for p in _metric_points(traced.metrics, "cdchub.batch.duration")] == [1]


def test_clock_skew_is_counted_and_lag_clamped(traced: Traced) -> None:
    # The source's clock 60 s ahead of the hub's: raw lag about -60 s.
    records = [make_record("shop.public.orders.c", shift_commit_s=60)]
    batch = _apply(traced.runner, records)
    assert [lag for t in batch.tables for lag in t.lags_ms] == [0.0]
    skew = _metric_points(traced.metrics, "cdchub.replication.lag.negative")
    assert [p.value for p in skew] == [1]
    root = next(
        s for s in traced.spans.get_finished_spans() if s.parent is None and s.name != "COMMIT"
    )
    assert root.attributes["cdchub.clock_skew.events"] == 1


def test_a_stopped_table_sets_the_stopped_gauge(traced: Traced) -> None:
    from tests.unit.test_stops import retyped

    first = make_record("shop.public.orders.u")
    _apply(traced.runner, [first, make_record("shop.public.customers.c")])
    assert _metric_points(traced.metrics, "cdchub.tables.stopped") == []
    _apply(traced.runner, [retyped(first, first.offset + 1)])
    points = _metric_points(traced.metrics, "cdchub.tables.stopped")
    assert [(dict(p.attributes), p.value) for p in points] == [
        ({"source": "shop", "table": "public.orders"}, 1)
    ]
