"""The consumer's hot-path dependencies are the C ones (issue 9: pure-Python CRC32C cost 19-61%)."""

from __future__ import annotations

import json
from typing import Any

import crc32c
import kafka.record.util as kafka_util

from cdc_consumers import jsonfast


def test_kafka_python_checks_crc32c_in_c() -> None:
    # kafka-python picks the `crc32c` package at import time; the pure-Python one is the fallback.
    assert kafka_util._crc32c is crc32c.crc32c
    assert kafka_util.calc_crc32c(b"123456789") == 0xE3069283  # RFC 3720 check value


def test_jsonfast_matches_stdlib_and_falls_back() -> None:
    doc = b'{"a": [1, -9223372036854775808, 1.5e-10, "\\ud83d\\ude00 \\u00fc"], "b": null}'
    assert jsonfast.loads(doc) == json.loads(doc)
    # orjson refuses NaN literals and lone surrogates; the stdlib parser takes them.
    assert jsonfast.loads(b'{"x": NaN}')["x"] != jsonfast.loads(b'{"x": NaN}')["x"]
    assert jsonfast.loads(b'"\\ud800"') == "\ud800"


def test_decoder_notices_a_new_schema_on_the_same_topic() -> None:
    from cdc_consumers.envelope import EnvelopeDecoder
    from core.model import KafkaCoordinates, SourceKind

    def record(fields: list[str], values: dict[str, object]) -> bytes:
        schema = {
            "type": "struct",
            "fields": [
                {
                    "type": "struct",
                    "field": "after",
                    "optional": True,
                    "fields": [{"type": "int64", "field": f, "optional": True} for f in fields],
                },
            ],
        }
        payload = {
            "after": values,
            "op": "c",
            "source": {"schema": "public", "table": "t", "ts_us": 1, "lsn": 5},
        }
        return json.dumps({"schema": schema, "payload": payload}, separators=(",", ":")).encode()

    decoder = EnvelopeDecoder("src", SourceKind.POSTGRES)
    where = KafkaCoordinates("src.public.t", 0, 0)
    first = decoder.decode(None, record(["a"], {"a": 1}), where)
    again = decoder.decode(None, record(["a"], {"a": 2}), where)
    widened = decoder.decode(None, record(["a", "b"], {"a": 3, "b": 4}), where)
    assert first is not None and again is not None and widened is not None
    assert again.schema is first.schema and again.after == {"a": 2}
    assert widened.schema.names == ("a", "b") and widened.after == {"a": 3, "b": 4}
    # Same length, other bytes: a renamed column must not reuse the cached shape.
    renamed = decoder.decode(None, record(["a", "c"], {"a": 5, "c": 6}), where)
    assert renamed is not None and renamed.schema.names == ("a", "c")


def test_kafka_python_reads_the_zstd_batches_the_connectors_write() -> None:
    from kafka import codec

    from connectors.debezium import PRODUCER_OVERRIDES

    assert PRODUCER_OVERRIDES["producer.override.compression.type"] == "zstd"
    assert codec.has_zstd()
    payload = b'{"schema": {"type": "struct"}, "payload": {}}' * 200
    assert codec.zstd_decode(codec.zstd_encode(payload)) == payload


def test_zstd_batches_decompress_as_kafka_python_does_only_faster() -> None:
    import zstandard
    from kafka import codec
    from kafka.record import default_records

    from connectors.kafka_stream import _zstd_decode, install_fast_zstd

    # Frames as the Java producer writes them (no content size), one or several per batch.
    compressor = zstandard.ZstdCompressor(write_content_size=False)
    parts = [b'{"schema": {"type": "struct"}, "payload": {"n": %d}}' % i * 300 for i in range(3)]
    one = compressor.compress(parts[0])
    several = b"".join(compressor.compress(p) for p in parts)
    from aiokafka import codec as c_codec
    from aiokafka.record._crecords import default_records as c_records

    for payload in (one, several):
        assert (
            _zstd_decode(payload)
            == codec.zstd_decode(payload)
            == c_codec.zstd_decode(payload)
            == (parts[0] if payload is one else b"".join(parts))
        )
    # A frame larger than one output buffer (`_ZSTD_WRITE_SIZE`), between two small ones.
    from connectors.kafka_stream import _ZSTD_WRITE_SIZE

    big = bytes(range(256)) * (_ZSTD_WRITE_SIZE // 256 + 4099)
    framed = compressor.compress(parts[1]) + compressor.compress(big) + one
    assert _zstd_decode(framed) == parts[1] + big + parts[0] == codec.zstd_decode(framed)
    install_fast_zstd()
    assert default_records.zstd_decode is _zstd_decode
    assert c_records.zstd_decode is _zstd_decode


def test_kafka_python_reads_its_sockets_in_large_chunks() -> None:
    """`install_large_reads` replaces kafka-python's 4 KiB socket reads: what the socket holds
    comes back whole in a few reads, a closed peer is a connection error, as before."""
    import socket

    from kafka.errors import KafkaConnectionError
    from kafka.net.transport import KafkaTCPTransport

    from connectors import kafka_stream

    assert kafka_stream.install_large_reads()
    assert KafkaTCPTransport._sock_recv is kafka_stream._sock_recv

    class Counting:
        def __init__(self, sock: socket.socket) -> None:
            self.sock, self.calls = sock, 0

        def recv(self, n: int) -> bytes:
            self.calls += 1
            return self.sock.recv(n)

    class Transport:  # what `_sock_recv` reads of a KafkaTCPTransport
        def __init__(self, sock: socket.socket) -> None:
            self._sock = Counting(sock)

    ours, peer = socket.socketpair()
    ours.setblocking(False)
    payload = bytes(range(256)) * 600  # 150 KiB, a fetch response's worth
    peer.sendall(payload)
    transport = Transport(ours)
    data, error = KafkaTCPTransport._sock_recv(transport)
    assert error is None and data == payload
    assert transport._sock.calls <= 3  # 38 reads of 4 KiB before

    peer.close()
    data, error = KafkaTCPTransport._sock_recv(transport)
    assert data == b"" and isinstance(error, KafkaConnectionError)
    ours.close()


def _built_batch(compression: int, records: list[tuple[Any, ...]], base: int) -> bytes:
    from kafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 30,
    )
    for i, (timestamp, key, value, headers) in enumerate(records):
        builder.append(base + i, timestamp=timestamp, key=key, value=value, headers=headers)
    return bytes(builder.build())


def _batches(records: list[tuple[Any, ...]], codecs: list[int], base: int) -> bytes:
    """`records` split evenly over one batch per codec, offsets from `base`, as one fetch holds them."""
    size = len(records) // len(codecs)
    return b"".join(
        _built_batch(codec, records[i * size : (i + 1) * size], base + i * size)
        for i, codec in enumerate(codecs)
    )


def test_record_batches_parse_in_c_exactly_as_kafka_python_parses_them() -> None:
    """`install_fast_records`: every field of every record as kafka-python's own parser reads it,
    uncompressed and under each codec Debezium's producer may use, nulls, empty values, headers,
    and values past a varint's byte."""
    import random

    from kafka.record import MemoryRecords
    from kafka.record.default_records import DefaultRecordBatch

    from connectors import kafka_stream

    rng = random.Random(7)
    records = [
        (
            1_795_628_428_577 + rng.randrange(10_000),
            None if i % 9 == 0 else b"k%d" % i,
            None if i % 11 == 0 else (b"" if i % 13 == 0 else rng.randbytes(rng.randrange(400))),
            [("h", b"v"), ("n", None)] if i % 5 == 0 else [],
        )
        for i in range(300)
    ]
    # The codecs kafka-python can write here (the oracle reads what it writes).
    codecs = [
        DefaultRecordBatch.CODEC_NONE,
        DefaultRecordBatch.CODEC_GZIP,
        DefaultRecordBatch.CODEC_ZSTD,
    ]
    data = _batches(records, codecs, 1000)

    def read() -> list[tuple[Any, ...]]:
        out = []
        memory = MemoryRecords(data)
        batch = memory.next_batch()
        while batch is not None:
            out += [
                (r.offset, r.timestamp, r.timestamp_type, r.key, r.value, r.headers, r.checksum)
                for r in batch
            ]
            batch = memory.next_batch()
        return out

    assert kafka_stream.install_fast_records()
    fast = read()
    DefaultRecordBatch.__iter__ = kafka_stream._SLOW_BATCH_ITER[0]  # type: ignore[method-assign]
    try:
        slow = read()
    finally:
        assert kafka_stream.install_fast_records()
    assert DefaultRecordBatch.__iter__ is kafka_stream._fast_batch_iter
    assert len(fast) == 300
    assert fast == slow


def test_the_hub_consumer_reads_stream_records_as_kafka_python_reads_its_own() -> None:
    """`install_stream_records`: the same records (every field the runner reads), the same fetch
    position after every partial take, a start in the middle of a batch, every codec; with the C
    parser and without it. Another consumer of the process keeps kafka-python's records."""
    import random

    from kafka import TopicPartition
    from kafka.consumer.fetcher import Fetcher, IsolationLevel
    from kafka.record import MemoryRecords
    from kafka.record.default_records import DefaultRecordBatch

    from connectors import kafka_stream
    from core.model import StreamRecord

    rng = random.Random(11)
    records = [
        (
            1_795_628_428_577 + i,
            None if i % 9 == 0 else b"k%d" % i,
            None if i % 11 == 0 else rng.randbytes(rng.randrange(300)),
            [("__debezium.context.taskId", b"0"), ("n", None)] if i % 3 else [],
        )
        for i in range(240)
    ]
    codecs = [
        DefaultRecordBatch.CODEC_NONE,
        DefaultRecordBatch.CODEC_ZSTD,
        DefaultRecordBatch.CODEC_GZIP,
    ]
    data = _batches(records, codecs, 500)
    tp = TopicPartition("shop.public.orders", 3)
    marker = kafka_stream.stream_records_marker()

    def take_all(start: int, chunk: int, deserializer: object, isolation: object = None) -> Any:
        part = Fetcher.PartitionRecords(
            start,
            tp,
            MemoryRecords(data),
            value_deserializer=deserializer,
            isolation_level=isolation or IsolationLevel.READ_UNCOMMITTED,
        )
        out, positions = [], []
        while part:
            got = part.take(chunk)
            out += got
            positions.append(part.next_fetch_offset)
        return out, positions

    assert kafka_stream.install_stream_records()
    assert kafka_stream.install_stream_records()  # idempotent
    for fast_parser in (True, False):
        if not fast_parser:
            DefaultRecordBatch.__iter__ = kafka_stream._SLOW_BATCH_ITER[0]  # type: ignore[method-assign]
        try:
            for start, chunk in [(500, 1000), (500, 7), (537, 13), (739, 1)]:
                ours, our_positions = take_all(start, chunk, marker)
                theirs, their_positions = take_all(start, chunk, None)
                assert all(type(r) is StreamRecord for r in ours)
                assert [
                    (r.topic, r.partition, r.offset, r.timestamp, r.key, r.value) for r in ours
                ] == [(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value) for r in theirs]
                assert our_positions == their_positions
                assert ours[0].offset == start and ours[-1].offset == 739
        finally:
            assert kafka_stream.install_fast_records()
    # Without the marker, or reading committed only, kafka-python's own records.
    theirs, _ = take_all(500, 50, None)
    assert theirs and not isinstance(theirs[0], StreamRecord)
    committed, _ = take_all(500, 50, marker, IsolationLevel.READ_COMMITTED)
    assert committed and not isinstance(committed[0], StreamRecord)
