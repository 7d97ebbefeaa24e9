"""Decoding real Debezium 3.5 envelopes captured from the local stack (tests/fixtures/).

Expected values are written out by hand from the raw payloads (e.g. base64 `Lz3A` is the unscaled
integer 3096000; with scale 2 that is 30960.00), not computed with the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from cdc_consumers.envelope import EnvelopeDecoder
from core.model import KafkaCoordinates, Op, SourceKind

FIXTURES = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "debezium_envelopes.json").read_text()
)
UTC = dt.UTC


def decode(name: str, source: str, kind: SourceKind):  # type: ignore[no-untyped-def]
    record = FIXTURES[name]
    decoder = EnvelopeDecoder(source, kind)
    coords = KafkaCoordinates(record["topic"], record["partition"], record["offset"])
    key = record["key"].encode() if record["key"] else None
    value = record["value"].encode() if record["value"] else None
    return decoder.decode(key, value, coords)


def test_postgres_update_types() -> None:
    event = decode("shop.public.orders.u", "shop", SourceKind.POSTGRES)
    assert event.op is Op.UPDATE
    assert event.table.namespace == "public" and event.table.table == "orders"
    assert event.key == (265,)
    row = event.after
    assert row["total_amount"] == Decimal("30960.00")
    assert row["order_date"] == dt.date(2024, 11, 29)
    assert row["placed_at"] == dt.datetime(2024, 11, 29, 14, 56, 24, 283252, tzinfo=UTC)
    assert row["shipped_at"] is None
    assert row["notes"] == "Gift wrap 🎁 please"
    assert json.loads(row["shipping_address"])["city"] == "São Paulo"
    assert event.commit_time == dt.datetime.fromtimestamp(1795628428.554422, tz=UTC)
    assert event.tx_id == "732"  # the xid: Debezium's "<xid>:<lsn>" differs per record
    # First transaction after the connector started: no previous commit LSN, the change LSN is used.
    assert event.position == f"{27199792:020d}.{27199792:020d}.{2:020d}"
    assert event.kafka is not None and event.kafka.topic == "shop.public.orders"


def test_postgres_insert_with_array_and_json() -> None:
    event = decode("shop.public.products.c", "shop", SourceKind.POSTGRES)
    assert event.op is Op.CREATE and event.before is None
    assert event.after["price"] == Decimal("740.71")
    assert event.after["tags"] == []
    assert event.after["is_discontinued"] is False
    assert json.loads(event.after["attributes"])["dimensions_cm"] == [31, 20, 73]
    assert event.position.startswith(f"{27218040:020d}.{27218144:020d}.")


def test_postgres_delete_keeps_only_the_key() -> None:
    event = decode("shop.public.orders.d", "shop", SourceKind.POSTGRES)
    assert event.op is Op.DELETE and event.after is None
    assert event.image is event.before
    non_key = {k: v for k, v in event.before.items() if k != "order_id"}
    assert set(non_key.values()) == {None}
    assert event.key == (event.before["order_id"],)


def test_tombstone_is_skipped() -> None:
    assert decode("shop.public.orders.tombstone", "shop", SourceKind.POSTGRES) is None


def test_snapshot_rows_are_flagged() -> None:
    event = decode("shop.public.customers.r", "shop", SourceKind.POSTGRES)
    assert event.op is Op.READ and event.snapshot


def test_mariadb_delete_has_full_before_image() -> None:
    event = decode("inventory.inventory.shipments.d", "inventory", SourceKind.MARIADB)
    assert event.op is Op.DELETE
    assert event.table.namespace == "inventory"
    assert event.key == (64,)
    row = event.before
    assert row["total_cost"] == Decimal("19398.89")
    assert row["created_at"] == dt.datetime(2024, 10, 3, 9, 48, 13, 976357)  # DATETIME(6): naive
    assert row["updated_at"] == dt.datetime(2024, 10, 3, 9, 48, 13, 976357, tzinfo=UTC)
    assert row["expected_on"] == dt.date(2024, 10, 13)
    assert row["notes"] == "😀" * 20
    assert event.tx_id == "0-1-23"
    assert event.position == ".".join(f"{n:020d}" for n in (1, 103099, 0, 1))


def test_mariadb_positions_follow_the_binlog() -> None:
    create = decode("inventory.inventory.shipments.c", "inventory", SourceKind.MARIADB)
    snapshot = decode("inventory.inventory.shipments.r", "inventory", SourceKind.MARIADB)
    assert snapshot.position < create.position


def test_garbage_names_topic_and_offset() -> None:
    from core.errors import DecodeError

    decoder = EnvelopeDecoder("shop", SourceKind.POSTGRES)
    with pytest.raises(DecodeError, match=r"topic=t.*partition=0.*offset=7"):
        decoder.decode(None, b"not json", KafkaCoordinates("t", 0, 7))


def _record(name: str) -> tuple[bytes | None, bytes | None, KafkaCoordinates]:
    record = FIXTURES[name]
    key = record["key"].encode() if record["key"] else None
    value = record["value"].encode() if record["value"] else None
    return key, value, KafkaCoordinates(record["topic"], record["partition"], record["offset"])


def test_one_decoder_over_a_stream_equals_a_fresh_decoder_per_record() -> None:
    """The decoder keeps each topic's last schema, key schema, transaction id and commit time to
    skip work on the next record; what it decodes must not depend on what it decoded before."""
    import random

    names = [n for n in FIXTURES if FIXTURES[n]["value"]] * 3
    random.Random(7).shuffle(names)
    kinds = {"shop": SourceKind.POSTGRES, "inventory": SourceKind.MARIADB}
    streaming = {s: EnvelopeDecoder(s, k) for s, k in kinds.items()}
    for name in names:
        source = name.split(".", 1)[0]
        fresh = EnvelopeDecoder(source, kinds[source]).decode(*_record(name))
        assert streaming[source].decode(*_record(name)) == fresh, name


def test_a_key_schema_change_within_a_topic_is_read() -> None:
    key, value, coords = _record("shop.public.orders.u")
    assert key is not None and value is not None
    decoder = EnvelopeDecoder("shop", SourceKind.POSTGRES)
    assert decoder.decode(key, value, coords).key == (265,)  # type: ignore[union-attr]
    # The key gains a column (a primary key widened at the source): same topic, same value schema.
    wider = json.loads(key)
    wider["schema"]["fields"].append({"type": "int64", "optional": False, "field": "customer_id"})
    wider["payload"]["customer_id"] = json.loads(value)["payload"]["after"]["customer_id"]
    event = decoder.decode(json.dumps(wider, separators=(",", ":")).encode(), value, coords)
    assert event is not None and event.schema.key == ("order_id", "customer_id")
    assert event.key == (265, wider["payload"]["customer_id"])
    # And back.
    assert decoder.decode(key, value, coords).schema.key == ("order_id",)  # type: ignore[union-attr]


def test_placeholder_text_inside_a_value_is_a_value() -> None:
    """A payload that holds the placeholder's text inside a longer value takes the checked path,
    and nothing in it is unavailable."""
    key, value, coords = _record("shop.public.orders.u")
    assert value is not None
    document = json.loads(value)
    document["payload"]["after"]["notes"] = "see __debezium_unavailable_value docs"
    event = EnvelopeDecoder("shop", SourceKind.POSTGRES).decode(
        key, json.dumps(document, separators=(",", ":")).encode(), coords
    )
    assert event is not None and event.unavailable == frozenset()
    assert event.after is not None
    assert event.after["notes"] == "see __debezium_unavailable_value docs"


def test_a_row_missing_or_adding_columns_is_read_by_name() -> None:
    """The decoder reads a payload row in place when it holds exactly its schema's columns; a
    row that lacks one (None) or carries one more (ignored) is read column by column."""
    from cdc_consumers.converters import row_decoder

    fields = [
        {"type": "int64", "optional": False, "field": "id"},
        {"type": "int32", "optional": True, "name": "io.debezium.time.Date", "field": "d"},
        {"type": "string", "optional": True, "field": "s"},
    ]
    _, decode = row_decoder(fields)
    assert decode({"id": 1, "d": 1, "s": "x"}, False, False) == {
        "id": 1,
        "d": dt.date(1970, 1, 2),
        "s": "x",
    }
    assert decode({"id": 1, "s": "x"}, False, False) == {"id": 1, "d": None, "s": "x"}
    assert decode({"id": 1, "d": 0, "s": "x", "extra": 9}, False, True) == {
        "id": 1,
        "d": dt.date(1970, 1, 1),
        "s": "x",
    }


@pytest.mark.parametrize(
    ("sequence", "previous"),
    [
        ('["22810384","22810440"]', 22810384),  # the connector's form: decimal LSNs as text
        ('[null,"22810440"]', None),  # the first transaction after a start
        ('["0/15C0B10","0/15C0B48"]', 0x15C0B10),  # X/Y text
        ('[ "22810384" , "22810440" ]', 22810384),  # other JSON spacing
        (["22810384", "22810440"], 22810384),  # already a list
        (None, None),
    ],
)
def test_postgres_position_reads_the_previous_commit_from_sequence(
    sequence: object, previous: int | None
) -> None:
    from cdc_consumers.positions import postgres_position

    source = {"lsn": 22810440, "sequence": sequence}
    tx_key = 22810440 if previous is None else previous
    assert postgres_position(source, 3) == f"{tx_key:020d}.{22810440:020d}.{3:020d}"


def test_a_payload_without_op_or_source_is_a_decode_error() -> None:
    from core.errors import DecodeError

    decoder = EnvelopeDecoder("shop", SourceKind.POSTGRES)
    record = FIXTURES["shop.public.orders.u"]
    value = record["value"].encode()
    where = KafkaCoordinates(record["topic"], 0, 7)
    for broken in (
        value.replace(b'"op":"u"', b'"xop":"u"'),
        value.replace(b'"source":', b'"xsource":'),
    ):
        with pytest.raises(DecodeError) as caught:
            decoder.decode(record["key"].encode(), broken, where)
        assert caught.value.context["offset"] == 7
