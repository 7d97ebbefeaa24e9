"""`KafkaChangeStream`: the `core.stream.ChangeStream` the runner reads, over kafka-python."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from core.errors import KafkaUnavailable
from core.model import StreamRecord
from core.stream import OnAssign, Partition

# Output buffer of one zstd decompression call. python-zstandard releases the GIL around each
# buffer's worth it decompresses, and each time the consumer's thread waits to take it back while
# the apply thread runs Python: with its default 128 KiB a catch-up's batches (0.85 MB on average,
# up to 6 MB) gave it up ~7 times each; one buffer per batch, once. Only the pages written are
# touched.
_ZSTD_WRITE_SIZE = 8 * 1024 * 1024
_zstd_local = threading.local()


def _zstd_decode(payload: bytes) -> bytes:
    """Every zstd frame of a batch, decompressed (what kafka-python's `zstd_decode` returns).

    kafka-python 3.0 reads the frames through `stream_reader`, in small chunks: measured at 22 ms
    per 16 MB of Debezium JSON against 2.3 ms here, about 6% of a catch-up's main thread. The
    Java producer writes frames without their content size, so each frame is read by a
    `decompressobj`, and what follows it (`unused_data`) is the next frame. The decompressor (its
    context and window) is kept per thread: a fresh one per batch faulted its memory in anew.
    """
    decompressor = getattr(_zstd_local, "decompressor", None)
    if decompressor is None:
        import zstandard

        decompressor = _zstd_local.decompressor = zstandard.ZstdDecompressor()
    parts = []
    rest = payload
    while rest:
        frame = decompressor.decompressobj(write_size=_ZSTD_WRITE_SIZE)
        parts.append(frame.decompress(rest))
        rest = frame.unused_data
    return parts[0] if len(parts) == 1 else b"".join(parts)


def install_fast_zstd() -> None:
    """Have kafka-python, and aiokafka's C record parser where present, decompress zstd batches
    with `_zstd_decode` (idempotent).

    aiokafka's parser decompresses through cramjam and copies the result into `bytes`: 0.60 s
    against 0.51 s for a 400,000-event backlog's 3.2 GB, alone; in a catch-up, where the other
    thread contends for memory, py-spy put its zstd at ~10% of the main thread.
    """
    from kafka import codec
    from kafka.record import default_records

    if codec.has_zstd():
        default_records.zstd_decode = _zstd_decode
        try:
            from aiokafka.record._crecords import (  # type: ignore[import-untyped]
                default_records as c_records,
            )
        except ImportError:
            return
        # The compiled module looks the name up in its globals at each call.
        if hasattr(c_records, "zstd_decode"):
            c_records.zstd_decode = _zstd_decode


def _records_in_c(batch: Any) -> Iterator[Any]:
    """The records of a kafka-python `DefaultRecordBatch`, parsed by aiokafka's C record parser.

    kafka-python parses each record in Python (varints, slices, one object): ~15 us a record on
    a catch-up's backlog, measured, the largest single cost of the consumer's thread. aiokafka's
    record module is the same code compiled (Cython), with its own codecs (cramjam): ~4.5 us a
    record, decompression included. What comes out is kafka-python's own record type, field for
    field (tests/unit/test_hot_path_deps.py compares the two parsers on built batches); its size
    counts the key and value (kafka-python's byte metrics only read it).
    """
    from aiokafka.errors import KafkaError as AioKafkaError  # type: ignore[import-untyped]
    from aiokafka.record._crecords.default_records import (  # type: ignore[import-untyped]
        DefaultRecordBatch as CBatch,
    )
    from kafka.errors import CorruptRecordError
    from kafka.record.default_records import DefaultRecord

    try:
        for r in CBatch(bytes(batch._buffer)):
            key, value = r.key, r.value
            yield DefaultRecord(
                (len(key) if key is not None else 0) + (len(value) if value is not None else 0),
                r.offset,
                r.timestamp,
                r.timestamp_type,
                key,
                value,
                r.headers,
            )
    except AioKafkaError as exc:
        raise CorruptRecordError(f"Found invalid record structure: {exc}") from exc


def _fast_batch_iter(self: Any) -> Iterator[Any]:
    """`DefaultRecordBatch.__iter__` through `_records_in_c`; a control batch, or one already
    being read, the way kafka-python reads it."""
    if self._decompressed or self.is_control_batch:
        return _SLOW_BATCH_ITER[0](self)
    return _records_in_c(self)


_SLOW_BATCH_ITER: list[Callable[[Any], Any]] = []


def install_fast_records() -> bool:
    """Have kafka-python's record batches parsed by aiokafka's C parser (idempotent); False when
    it is not importable or this kafka-python's batch is not the one it was written for (kafka-
    python then parses as it does)."""
    try:
        from aiokafka.record._crecords import default_records  # noqa: F401
        from kafka.record.default_records import DefaultRecordBatch
    except ImportError:
        return False
    if DefaultRecordBatch.__iter__ is _fast_batch_iter:
        return True
    probe = DefaultRecordBatch.__init__.__code__.co_names
    if "_buffer" not in probe or "_decompressed" not in probe:
        return False
    _SLOW_BATCH_ITER[:] = [DefaultRecordBatch.__iter__]
    DefaultRecordBatch.__iter__ = _fast_batch_iter
    return True


_MARKER: list[Any] = []


def stream_records_marker() -> Any:
    """The `value_deserializer` that has a consumer's records come out as `StreamRecord`s
    (`install_stream_records`); as a deserializer, it returns the bytes as they are."""
    if not _MARKER:
        from kafka.serializer import Deserializer

        class _AsStreamRecords(Deserializer):
            def deserialize(self, topic: str, headers: Any, data: bytes | None) -> bytes | None:
                return data

        _MARKER.append(_AsStreamRecords())
    return _MARKER[0]


def _batch_records(batch: Any) -> Iterable[Any]:
    """A batch's records: straight from aiokafka's C parser when `install_fast_records` is in
    place (no kafka-python record object in between), else as the batch yields them."""
    if (
        _SLOW_BATCH_ITER
        and batch.magic == 2
        and type(batch).__iter__ is _fast_batch_iter
        and not batch._decompressed
    ):
        from aiokafka.record._crecords.default_records import (
            DefaultRecordBatch as CBatch,
        )

        return CBatch(bytes(batch._buffer))
    return batch


def _stream_records(part: Any, tp: Any, records: Any) -> Iterator[StreamRecord]:
    """kafka-python's `PartitionRecords._unpack_records` for the hub's own consumers: the same
    batches, checks and fetch offsets, but each record comes out as the `StreamRecord` the runner
    reads.

    kafka-python builds a `ConsumerRecord` per record, and counts its headers' bytes in Python
    (Debezium writes four headers on every record): ~9 us a record on a catch-up's backlog on top
    of ~2.7 us for the C parse, measured. The hub reads neither. Control batches are skipped and
    the fetch position moves past them as kafka-python does; a consumer that reads committed only
    keeps kafka-python's own path (`_unpack_records`).
    """
    from kafka import errors

    # What aiokafka's parser raises on a malformed batch, when it is the one parsing.
    parse_errors: tuple[type[BaseException], ...] = ()
    if _SLOW_BATCH_ITER:
        from aiokafka.errors import KafkaError as AioKafkaError

        parse_errors = (AioKafkaError,)
    topic, partition = tp.topic, tp.partition
    make = StreamRecord
    try:
        batch = records.next_batch()
        last_batch = None
        while batch is not None:
            last_batch = batch
            if part.check_crcs and not batch.validate_crc():
                raise errors.CorruptRecordError(
                    f"Record batch for partition {tp} at offset {batch.base_offset} failed crc check"
                )
            if batch.magic == 2:
                part.leader_epoch = batch.leader_epoch
                if batch.is_control_batch:
                    part.next_fetch_offset = batch.next_offset
                    batch = records.next_batch()
                    continue
            read = size = 0
            try:
                for record in _batch_records(batch):
                    offset = record.offset
                    key, value = record.key, record.value
                    # Where the next fetch starts if the caller stops taking here.
                    part.next_fetch_offset = offset + 1
                    read += 1
                    size += (len(key) if key is not None else 0) + (
                        len(value) if value is not None else 0
                    )
                    yield make(topic, partition, offset, record.timestamp, key, value)
            except parse_errors as exc:
                raise errors.CorruptRecordError(f"Found invalid record structure: {exc}") from exc
            finally:
                part.records_read += read
                part.bytes_read += size
            batch = records.next_batch()
        if last_batch is not None and last_batch.magic == 2:
            # A batch's last offset stands even when compaction removed its last record.
            part.next_fetch_offset = last_batch.next_offset
        part.drain()
    except StopIteration as exc:  # as kafka-python: never let it end the caller's loop quietly
        raise RuntimeError("StopIteration raised unpacking messageset") from exc


_ORIGINAL_UNPACK: list[Callable[..., Any]] = []


def _unpack_records(
    self: Any, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any
) -> Iterator[Any]:
    from kafka.consumer.fetcher import IsolationLevel

    if (
        _MARKER
        and value_deserializer is _MARKER[0]
        and key_deserializer is None
        and self.isolation_level == IsolationLevel.READ_UNCOMMITTED
    ):
        return _stream_records(self, tp, records)
    return _ORIGINAL_UNPACK[0](self, tp, records, key_deserializer, value_deserializer)


def install_stream_records() -> bool:
    """Have consumers whose `value_deserializer` is `stream_records_marker()` read `StreamRecord`s
    (idempotent); False when this kafka-python's `PartitionRecords` is not the one this was
    written for (the consumer then reads kafka-python's records, converted after the poll)."""
    from kafka.consumer.fetcher import Fetcher

    part = Fetcher.PartitionRecords
    if part._unpack_records is _unpack_records:
        return True
    arguments = part._unpack_records.__code__.co_varnames[:5]
    if arguments != ("self", "tp", "records", "key_deserializer", "value_deserializer"):
        return False
    if not {"next_fetch_offset", "records_read", "bytes_read", "leader_epoch"} <= set(
        part.__init__.__code__.co_names
    ):
        return False
    _ORIGINAL_UNPACK[:] = [part._unpack_records]
    part._unpack_records = _unpack_records
    return True


# Bytes asked of the socket per read on kafka-python's I/O thread (it asks 4 KiB).
RECV_CHUNK = 256 * 1024
_transport_log = logging.getLogger("kafka.net.transport")
_log = logging.getLogger(__name__)


def _sock_recv(self: Any) -> tuple[bytes, Exception | None]:
    """Everything the socket holds now, read `RECV_CHUNK` bytes at a time (kafka-python 3.0's
    `KafkaTCPTransport._sock_recv`, with a larger read).

    kafka-python 3.0 reads 4 KiB per call on its I/O thread. Each call releases the GIL and takes
    it back, and while the decoding or the apply thread holds it, taking it back waits up to the
    switch interval (5 ms): a catch-up's fetch response of a few MB took hundreds of such calls,
    and the main thread waited for it (py-spy: ~28% of a catch-up in `fetch_records`' wait).
    """
    from kafka import errors

    received = []
    error: Exception | None = None
    while True:
        try:
            data = self._sock.recv(RECV_CHUNK)
        except (BlockingIOError, InterruptedError):
            break
        except BaseException as exc:  # what kafka-python does: the connection is closed
            _transport_log.exception("%s: error receiving network data; closing socket", self)
            error = errors.KafkaConnectionError(exc)
            break
        if not data:
            _transport_log.error("%s: socket disconnected", self)
            error = errors.KafkaConnectionError("socket disconnected")
            break
        received.append(data)
    return b"".join(received), error


def install_large_reads() -> bool:
    """Have kafka-python read its sockets `RECV_CHUNK` bytes at a time (idempotent); False when
    this kafka-python has no `KafkaTCPTransport._sock_recv` to replace (it then reads as it does)."""
    try:
        from kafka.net.transport import KafkaTCPTransport
    except ImportError:
        return False
    if not callable(getattr(KafkaTCPTransport, "_sock_recv", None)):
        return False
    KafkaTCPTransport._sock_recv = _sock_recv
    return True


def _log_failed_commit(_offsets: Any, response: Any) -> None:
    if isinstance(response, Exception):
        _log.debug("kafka commit (not waited for) failed: %s", response)


class KafkaChangeStream:
    """`ChangeStream` over kafka-python's `KafkaConsumer`."""

    # How long `fetch` reads before it gives up on addresses it has not found.
    FETCH_TIMEOUT_S = 30.0

    def __init__(self, consumer: Any, settings: dict[str, Any] | None = None) -> None:
        self.consumer = consumer
        # The connection settings, for the short-lived reader `fetch` opens.
        self.settings = settings or {}
        self._stream_records = (
            bool(_MARKER) and self.settings.get("value_deserializer") is _MARKER[0]
        )

    @classmethod
    def connect(
        cls,
        bootstrap_servers: str,
        group_id: str,
        client_id: str,
        max_poll_records: int,
        fetch_max_bytes: int = 64 * 1024 * 1024,
        max_partition_fetch_bytes: int = 8 * 1024 * 1024,
        bootstrap_s: float = 30.0,
        **extra: Any,
    ) -> KafkaChangeStream:
        """A consumer in `group_id` that commits nothing by itself (offsets live in the warehouse).

        Raises:
            KafkaUnavailable: no broker answered within `bootstrap_s` (retryable).
        """
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        install_fast_zstd()
        install_large_reads()
        install_fast_records()
        settings: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": max_poll_records,
            # New tables appear as new topics; find them within seconds, not the default 5 minutes.
            "metadata_max_age_ms": 5000,
            # The broker answers a fetch with what it has after this long: while flow control
            # holds most partitions paused, the 200 ms we had left the consumer idle ~40% of a
            # catch-up (py-spy); 50 ms raised it 20% (docs/benchmarks.md).
            "fetch_max_wait_ms": 50,
            # Catch-up reads megabytes per fetch rather than the 1 MB per partition default.
            "fetch_max_bytes": fetch_max_bytes,
            "max_partition_fetch_bytes": max_partition_fetch_bytes,
            # A killed consumer's partitions move to its successor after this long.
            "session_timeout_ms": 10000,
            "heartbeat_interval_ms": 3000,
        }
        settings["bootstrap_timeout_ms"] = int(bootstrap_s * 1000)
        if install_stream_records():
            # The records come out as the runner's own (no kafka-python record in between).
            settings["value_deserializer"] = stream_records_marker()
        settings.update(extra)
        try:
            return cls(KafkaConsumer(**settings), settings)
        except KafkaError as exc:
            raise KafkaUnavailable(
                f"Kafka is not reachable at {bootstrap_servers} (no broker answered within "
                f"{bootstrap_s:.0f}s); is the stack up? `cdchub stack status`",
                bootstrap_servers=bootstrap_servers,
            ) from exc

    def subscribe(self, pattern: str, on_assign: OnAssign) -> None:
        from kafka import ConsumerRebalanceListener

        class _Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                pass

            def on_partitions_assigned(self, assigned: Any) -> None:
                on_assign([Partition(tp.topic, tp.partition) for tp in assigned])

        self.consumer.subscribe(pattern=pattern, listener=_Listener())

    def poll(self, max_records: int, timeout_ms: int) -> list[StreamRecord]:
        self._unstick_resumed()
        polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        out: list[StreamRecord] = []
        if self._stream_records:
            for records in polled.values():
                out.extend(records)
            return out
        for records in polled.values():
            out.extend(
                StreamRecord(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value)
                for r in records
            )
        return out

    def _tp(self, partition: Partition) -> Any:
        from kafka import TopicPartition

        return TopicPartition(partition.topic, partition.partition)

    def seek(self, partition: Partition, offset: int) -> None:
        self.consumer.seek(self._tp(partition), offset)

    def seek_to_beginning(self, partition: Partition) -> None:
        self.consumer.seek_to_beginning(self._tp(partition))

    def assignment(self) -> set[Partition]:
        return {Partition(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def position(self, partition: Partition) -> int:
        return int(self.consumer.position(self._tp(partition)))

    def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        tps = [self._tp(p) for p in partitions]
        if not tps:
            return {}
        ends = self.consumer.end_offsets(tps)
        return {Partition(tp.topic, tp.partition): int(o) for tp, o in ends.items()}

    def topics(self) -> set[str]:
        return set(self.consumer.topics())

    def subscribed_topics(self) -> set[str]:
        return set(self.consumer.subscription() or ())

    def pause(self, partitions: Iterable[Partition]) -> None:
        tps = [self._tp(p) for p in partitions]
        if tps:
            self.consumer.pause(*tps)

    def resume(self, partitions: Iterable[Partition]) -> None:
        tps = [self._tp(p) for p in partitions]
        if tps:
            self.consumer.resume(*tps)

    def _unstick_resumed(self) -> None:
        """Work around kafka-python 3.0's pause and resume (checked on 3.0.12).

        Records already parsed for a partition when it is paused are set aside, and the fetcher
        gives them back once it is resumed, but only while its in-line slot is `None`:
        - a drained slot keeps its empty `PartitionRecords`, so a resumed partition would never be
          read again (seen: a catch-up stopped dead);
        - a slot that still holds records of a partition paused since is set aside only inside
          the drain, after the give-back, so that drain returns nothing and the poll waits out a
          fetch of the partitions that have nothing buffered (`fetch_max_wait_ms`, ~50 ms) before
          it reads the resumed one: every switch of flow control cost that wait (~1.3 s of a
          catch-up, traced).
        Emptying the slot in both cases, the second as the drain itself would, lets the fetcher give
        back one resumed partition per poll, as it intends.
        """
        fetcher = getattr(self.consumer, "_fetcher", None)
        aside = getattr(fetcher, "_paused_partition_records", None)
        if fetcher is None or aside is None:
            return
        current = getattr(fetcher, "_next_partition_records", None)
        if current is None:
            return
        if not current:
            if aside:
                fetcher._next_partition_records = None
            return
        tp = current.topic_partition
        subscription = getattr(self.consumer, "_subscription", None)
        if subscription is not None and tp not in aside and subscription.is_paused(tp):
            aside[tp] = current
            fetcher._next_partition_records = None

    def fetch(
        self, addresses: list[tuple[str, int, int]]
    ) -> dict[tuple[str, int, int], StreamRecord]:
        """A reader of its own (no group, nothing committed): seek to each partition's first
        wanted offset and read until every wanted offset is passed (or the partition ends)."""
        from kafka import KafkaConsumer, TopicPartition

        wanted: dict[Any, set[int]] = {}
        for topic, partition, offset in addresses:
            wanted.setdefault(TopicPartition(topic, partition), set()).add(offset)
        if not wanted:
            return {}
        # The same connection (servers, client id, any TLS/SASL settings), but no group of its own.
        group_only = {
            "group_id",
            "enable_auto_commit",
            "session_timeout_ms",
            "heartbeat_interval_ms",
        }
        settings = {k: v for k, v in self.settings.items() if k not in group_only}
        reader = KafkaConsumer(group_id=None, enable_auto_commit=False, **settings)
        found: dict[tuple[str, int, int], StreamRecord] = {}
        try:
            reader.assign(list(wanted))
            ends = reader.end_offsets(list(wanted))
            for tp, offsets in wanted.items():
                reader.seek(tp, min(offsets))
            last = {tp: min(max(offsets), ends.get(tp, 0) - 1) for tp, offsets in wanted.items()}
            deadline = time.monotonic() + self.FETCH_TIMEOUT_S
            while time.monotonic() < deadline and any(
                reader.position(tp) <= last[tp] for tp in wanted
            ):
                for tp, records in reader.poll(timeout_ms=500).items():
                    for r in records:
                        if r.offset in wanted[tp]:
                            found[(r.topic, r.partition, r.offset)] = StreamRecord(
                                r.topic, r.partition, r.offset, r.timestamp, r.key, r.value
                            )
                    if reader.position(tp) > last[tp]:
                        reader.pause(tp)
        finally:
            reader.close(autocommit=False)
        return found

    def commit(self, offsets: dict[Partition, int], wait: bool = True) -> None:
        from kafka.structs import OffsetAndMetadata

        if offsets:
            stored = {self._tp(p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()}
            if wait:
                self.consumer.commit(stored)
            else:
                self.consumer.commit_async(stored, callback=_log_failed_commit)

    def close(self) -> None:
        self.consumer.close(autocommit=False)
