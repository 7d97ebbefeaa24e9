"""Transaction assembly: whole transactions, in commit order, surviving a restart, bounded."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from cdc_consumers.transactions import TransactionAssembler, decode_boundary
from core.errors import DecodeError
from core.model import (
    ChangeEvent,
    Column,
    ColumnType,
    Op,
    SourceKind,
    StreamRecord,
    TableId,
    TableSchema,
)

SCHEMA = TableSchema((Column("id", ColumnType("int64"), optional=False),), ("id",))
ORDERS = TableId("shop", "public", "orders")
ITEMS = TableId("shop", "public", "order_items")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def record(topic: str, offset: int, value: bytes | None = b"{}") -> StreamRecord:
    return StreamRecord(topic, 0, offset, 0, None, value)


def event(table: TableId, key: int, tx: str | None, pos: int) -> ChangeEvent:
    return ChangeEvent(table, Op.CREATE, (key,), None, {"id": key}, f"{pos:08d}", T0, tx, SCHEMA)


def end(tx: str, count: int, offset: int) -> tuple:
    value = json.dumps({"schema": {}, "payload": {"status": "END", "id": tx, "event_count": count}})
    raw = record("shop.transaction", offset, value.encode())
    boundary = decode_boundary(raw, SourceKind.POSTGRES)
    assert boundary is not None
    return boundary, raw


def test_a_transaction_is_released_whole_once_its_end_and_all_events_arrived() -> None:
    asm = TransactionAssembler("shop", max_events=100, timeout_s=60)
    assert asm.add_event(event(ORDERS, 1, "tx1", 1), record("shop.public.orders", 0), 0.0)
    assert asm.release(0.0) == []
    asm.add_boundary(*end("tx1", 3, 0), 0.0)
    assert asm.add_event(event(ITEMS, 10, "tx1", 2), record("shop.public.order_items", 0), 0.0)
    assert asm.release(0.0) == []  # END says 3 events, 2 arrived
    assert asm.add_event(event(ITEMS, 11, "tx1", 3), record("shop.public.order_items", 1), 0.0)
    released = asm.release(0.0)
    assert [e.key for e, _ in released] == [(1,), (10,), (11,)]
    assert asm.parked_events == 0
    # A straggler of a finished transaction, and a snapshot row, are not parked.
    assert not asm.add_event(event(ITEMS, 12, "tx1", 4), record("shop.public.order_items", 2), 0.0)
    snap = ChangeEvent(ORDERS, Op.READ, (5,), None, {"id": 5}, "0", T0, None, SCHEMA, snapshot=True)
    assert not asm.add_event(snap, record("shop.public.orders", 3), 0.0)


def test_postgres_boundaries_match_events_by_xid() -> None:
    # Debezium 3.x writes "<xid>:<lsn of the record>": BEGIN, events and END all differ after the colon.
    raw = record(
        "shop.transaction", 0, b'{"payload":{"status":"END","id":"781:39951784","event_count":1}}'
    )
    boundary = decode_boundary(raw, SourceKind.POSTGRES)
    assert boundary is not None and boundary.tx_id == "781"
    gtid = record(
        "inv.transaction", 0, b'{"payload":{"status":"END","id":"0-1-20","event_count":1}}'
    )
    assert decode_boundary(gtid, SourceKind.MARIADB).tx_id == "0-1-20"


def test_a_later_complete_transaction_waits_for_an_earlier_incomplete_one() -> None:
    asm = TransactionAssembler("shop", max_events=100, timeout_s=60)
    asm.add_boundary(*end("tx1", 2, 0), 0.0)
    asm.add_boundary(*end("tx2", 1, 1), 0.0)
    asm.add_event(event(ORDERS, 2, "tx2", 5), record("shop.public.orders", 0), 0.0)
    asm.add_event(event(ORDERS, 1, "tx1", 1), record("shop.public.orders", 1), 0.0)
    assert asm.release(0.0) == []  # tx1 (committed first) still misses an event
    asm.add_event(event(ITEMS, 1, "tx1", 2), record("shop.public.order_items", 0), 0.0)
    assert [e.tx_id for e, _ in asm.release(0.0)] == ["tx1", "tx1", "tx2"]


def test_an_oversized_transaction_is_released_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asm = TransactionAssembler("shop", max_events=3, timeout_s=60)
    for i in range(5):
        asm.add_event(event(ITEMS, i, "big", i), record("shop.public.order_items", i), 0.0)
    with caplog.at_level(logging.WARNING):
        released = asm.release(0.0)
    assert len(released) == 5
    assert "larger than the transaction buffer" in caplog.text
    assert asm.stats.forced_transactions == 1
    # The rest of that transaction flows straight through.
    assert not asm.add_event(event(ITEMS, 9, "big", 9), record("shop.public.order_items", 9), 0.0)


def test_an_incomplete_transaction_is_released_only_when_its_source_shows_it_is_stuck(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asm = TransactionAssembler("shop", max_events=100, timeout_s=30)
    asm.add_boundary(*end("tx1", 2, 0), 0.0)
    asm.add_event(event(ORDERS, 1, "tx1", 1), record("shop.public.orders", 0), 0.0)
    # Catching up, for however long: the missing event may be next in line on another topic.
    assert asm.release(1000.0, caught_up=False) == []
    # Read to the end: the stall clock starts now, and runs for the timeout.
    assert asm.release(1000.0, caught_up=True) == []
    assert asm.release(1029.0, caught_up=True) == []
    with caplog.at_level(logging.WARNING):
        assert len(asm.release(1031.0, caught_up=True)) == 1
    assert "tx1 stalled" in caplog.text
    [forced] = asm.take_forced()
    assert (forced.tx_id, forced.arrived, forced.expected, forced.reason) == (
        "tx1",
        1,
        2,
        "stalled",
    )


def test_a_later_complete_transaction_is_no_evidence_of_a_stall() -> None:
    # Catching up: a later transaction completed, the earlier one's event is behind in another topic.
    asm = TransactionAssembler("shop", max_events=100, timeout_s=30)
    asm.add_boundary(*end("tx1", 2, 0), 0.0)
    asm.add_event(event(ORDERS, 1, "tx1", 1), record("shop.public.orders", 0), 0.0)
    asm.add_boundary(*end("tx2", 1, 1), 0.0)
    asm.add_event(event(ORDERS, 2, "tx2", 5), record("shop.public.orders", 1), 0.0)
    assert asm.release(5.0) == []
    assert asm.release(3600.0) == []  # however long, while its source is behind
    asm.add_event(event(ITEMS, 1, "tx1", 2), record("shop.public.order_items", 0), 3601.0)
    assert [e.tx_id for e, _ in asm.release(3601.0)] == ["tx1", "tx1", "tx2"]


def test_the_end_of_a_transaction_without_captured_rows_never_blocks() -> None:
    asm = TransactionAssembler("shop", max_events=100, timeout_s=30)
    asm.add_boundary(*end("heartbeat", 0, 0), 0.0)
    asm.add_boundary(*end("tx1", 1, 1), 0.0)
    asm.add_event(event(ORDERS, 1, "tx1", 1), record("shop.public.orders", 0), 0.0)
    assert [e.tx_id for e, _ in asm.release(0.0)] == ["tx1"]
    assert not asm.holding


def test_low_water_is_the_earliest_held_record_per_partition() -> None:
    asm = TransactionAssembler("shop", max_events=100, timeout_s=30)
    asm.add_event(event(ORDERS, 1, "tx1", 1), record("shop.public.orders", 4), 0.0)
    asm.add_event(event(ORDERS, 2, "tx1", 2), record("shop.public.orders", 9), 0.0)
    asm.add_boundary(*end("tx1", 3, 6), 0.0)
    assert asm.low_water() == {("shop.public.orders", 0): 4, ("shop.transaction", 0): 6}
    # The same record read twice (a rebalance) is parked once: the count stays honest.
    asm.add_event(event(ORDERS, 2, "tx1", 2), record("shop.public.orders", 9), 0.0)
    assert asm.parked_events == 2 and asm.release(0.0) == []


def test_events_of_an_uncounted_collection_do_not_hold_a_transaction() -> None:
    # `cdchub backfill` inserts into the signaling table: Debezium counts that event in END, then
    # Kafka Connect's filter drops it, so it never arrives.
    asm = TransactionAssembler(
        "inv", max_events=100, timeout_s=30, uncounted=frozenset({"inventory.debezium_signal"})
    )
    doc = {
        "payload": {
            "status": "END",
            "id": "0-1-77",
            "event_count": 2,
            "data_collections": [
                {"data_collection": "inventory.debezium_signal", "event_count": 1},
                {"data_collection": "inventory.warehouses", "event_count": 1},
            ],
        }
    }
    raw = record("inv.transaction", 0, json.dumps(doc).encode())
    boundary = decode_boundary(raw, SourceKind.MARIADB)
    assert boundary is not None and boundary.collections[0] == ("inventory.debezium_signal", 1)
    asm.add_boundary(boundary, raw, 0.0)
    asm.add_event(event(ORDERS, 1, "0-1-77", 1), record("inv.inventory.warehouses", 0), 0.0)
    assert [e.tx_id for e, _ in asm.release(0.0)] == ["0-1-77"]


def test_a_snapshot_row_waits_behind_a_parked_change_of_its_table() -> None:
    # An incremental snapshot row read after a parked streamed change of the same table (its
    # transaction still waits for an event elsewhere) must not be applied before that change: it
    # was read after it, so applied first it would look like drift and write a fake version.
    asm = TransactionAssembler("shop", max_events=100, timeout_s=60)
    assert asm.add_event(event(ORDERS, 1, "tx1", 10), record("shop.public.orders", 0), 0.0)
    asm.add_boundary(*end("tx1", 2, 0), 0.0)
    snap = ChangeEvent(
        ORDERS, Op.READ, (1,), None, {"id": 1}, "11", T0, None, SCHEMA, snapshot=True
    )
    assert asm.add_event(snap, record("shop.public.orders", 1), 0.0)  # parked behind tx1
    other = ChangeEvent(
        ITEMS, Op.READ, (7,), None, {"id": 7}, "12", T0, None, SCHEMA, snapshot=True
    )
    assert not asm.add_event(other, record("shop.public.order_items", 5), 0.0)  # nothing ahead
    assert asm.parked_events == 2 and asm.low_water()[("shop.public.orders", 0)] == 0
    assert asm.release(0.0) == []
    assert asm.add_event(event(ITEMS, 10, "tx1", 9), record("shop.public.order_items", 6), 0.0)
    released = asm.release(0.0)
    assert [(e.table, e.key, e.snapshot) for e, _ in released] == [
        (ORDERS, (1,), False),
        (ITEMS, (10,), False),
        (ORDERS, (1,), True),
    ]
    assert asm.parked_events == 0 and asm.low_water() == {}
    # With nothing parked in its topic any more, a snapshot row passes straight through.
    assert not asm.add_event(snap, record("shop.public.orders", 2), 0.0)


def _walked_low_water(asm: TransactionAssembler) -> dict[tuple[str, int], int]:
    """The low-water marks by definition: the earliest held record of each partition."""
    low: dict[tuple[str, int], int] = {}
    for tx in (*asm._open.values(), *asm._ended.values()):
        held = [*tx.events, *tx.riders]
        if tx.end is not None:
            held.append((None, tx.end))  # type: ignore[arg-type]
        for _, raw in held:
            key = (raw.stream, raw.partition)
            low[key] = min(low.get(key, raw.offset), raw.offset)
    return low


@pytest.mark.parametrize("seed", range(20))
def test_low_water_equals_the_earliest_held_record_through_random_interleavings(seed: int) -> None:
    """Transactions over three topics read in a random interleaving (each partition in order),
    with snapshot rows riding behind parked changes: after every step the marks `low_water`
    keeps equal the earliest record still held in each partition."""
    import random

    rng = random.Random(seed)
    topics = {"shop.public.orders": ORDERS, "shop.public.order_items": ITEMS}
    queues: dict[str, list[tuple[str, object]]] = {t: [] for t in [*topics, "shop.transaction"]}
    for n in range(60):
        tx = f"tx{n}"
        touched = rng.sample(sorted(topics), rng.randint(1, 2))
        count = 0
        for topic in touched:
            for _ in range(rng.randint(1, 3)):
                count += 1
                queues[topic].append(("event", (tx, count)))
            if rng.random() < 0.2:
                queues[topic].append(("snapshot", None))
        queues["shop.transaction"].append(("end", (tx, count)))
    offsets = dict.fromkeys(queues, 0)
    asm = TransactionAssembler("shop", max_events=10_000, timeout_s=60)
    key = 0
    while any(queues.values()):
        topic = rng.choice([t for t, q in queues.items() if q])
        kind, what = queues[topic].pop(0)
        offset, offsets[topic] = offsets[topic], offsets[topic] + 1
        key += 1
        if kind == "end":
            tx, count = what  # type: ignore[misc]
            asm.add_boundary(*end(tx, count, offset), 0.0)
        elif kind == "event":
            tx, _order = what  # type: ignore[misc]
            asm.add_event(event(topics[topic], key, tx, key), record(topic, offset), 0.0)
        else:
            snap = ChangeEvent(
                topics[topic], Op.READ, (key,), None, {"id": key}, "0", T0, None, SCHEMA, True
            )
            asm.add_event(snap, record(topic, offset), 0.0)
        if rng.random() < 0.3:
            asm.release(0.0)
        assert asm.low_water() == _walked_low_water(asm)
    asm.release(0.0)
    assert asm.low_water() == _walked_low_water(asm) == {}


# Debezium 3.5's END record as the JSON converter writes it (captured from the bench's stack).
_END_SCHEMA = (
    '{"type":"struct","fields":[{"type":"string","optional":false,"field":"status"},{"type":"'
    'string","optional":false,"field":"id"},{"type":"int64","optional":true,"field":"event_co'
    'unt"},{"type":"array","items":{"type":"struct","fields":[{"type":"string","optional":fal'
    'se,"field":"data_collection"},{"type":"int64","optional":false,"field":"event_count"}],"'
    'optional":true,"name":"event.collection","version":1},"optional":true,"field":"data_coll'
    'ections"},{"type":"int64","optional":false,"field":"ts_ms"}],"optional":false,"name":"io'
    '.debezium.connector.common.TransactionMetadataValue","version":1}'
)
_END_PAYLOAD = (
    '{"status":"END","id":"735:158683640","event_count":5,"data_collections":['
    '{"data_collection":"public.orders","event_count":1},'
    '{"data_collection":"public.customers","event_count":1},'
    '{"data_collection":"public.order_items","event_count":2},'
    '{"data_collection":"public.payments","event_count":1}],"ts_ms":1796200429588}'
)


@pytest.mark.parametrize(
    "value",
    [
        '{"schema":' + _END_SCHEMA + ',"payload":' + _END_PAYLOAD + "}",  # as written
        '{"schema": ' + _END_SCHEMA + ', "payload": ' + _END_PAYLOAD + "}",  # other spacing
        '{"payload":' + _END_PAYLOAD + "}",  # no schema
    ],
)
def test_an_end_record_decodes_the_same_whatever_its_form(value: str) -> None:
    boundary = decode_boundary(record("shop.transaction", 0, value.encode()), SourceKind.POSTGRES)
    assert boundary is not None
    assert (boundary.status, boundary.tx_id, boundary.event_count) == ("END", "735", 5)
    assert boundary.collections == (
        ("public.orders", 1),
        ("public.customers", 1),
        ("public.order_items", 2),
        ("public.payments", 1),
    )


def test_a_truncated_transaction_record_is_a_decode_error() -> None:
    value = '{"schema":' + _END_SCHEMA + ',"payload":{"status":"END","id":"7'
    with pytest.raises(DecodeError):
        decode_boundary(record("shop.transaction", 3, value.encode()), SourceKind.POSTGRES)
