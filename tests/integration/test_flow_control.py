"""Flow control on the real broker: a paused partition, resumed, is read on to its end.

kafka-python 3.0 sets aside the records it had parsed for a partition when it is paused and, after a
resume, could keep them aside for good (`KafkaChangeStream._unstick_resumed`): a catch-up with flow
control then stopped dead. This drives `KafkaChangeStream` (the stream `cdchub run` reads) against
the stack's Kafka, with compressed batches as the connectors write them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from kafka import KafkaProducer

from connectors.kafka_stream import KafkaChangeStream
from core.stream import Partition
from tests.integration.conftest import Stack

RECORDS = 3000


def _produce(bootstrap: str, topic: str, start: int, count: int) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, compression_type="zstd", linger_ms=20, batch_size=1 << 20
    )
    for i in range(start, start + count):
        producer.send(topic, key=str(i).encode(), value=(f"{topic}:{i}:" + "x" * 800).encode())
    producer.flush()
    producer.close()


def test_a_paused_then_resumed_partition_is_read_to_its_end(stack: Stack) -> None:
    bootstrap = stack.config.kafka.bootstrap_servers
    run = uuid.uuid4().hex[:8]
    a_topic, b_topic = f"flow{run}.a", f"flow{run}.b"
    for topic in (a_topic, b_topic):
        _produce(bootstrap, topic, 0, RECORDS)
    expected = {a_topic: RECORDS, b_topic: 2 * RECORDS}

    stream = KafkaChangeStream.connect(bootstrap, f"flow-{run}", "flow-test", max_poll_records=500)
    seen: dict[str, list[int]] = {a_topic: [], b_topic: []}
    try:
        stream.subscribe(f"flow{run}\\..*", lambda assigned: None)
        a = Partition(a_topic, 0)
        paused = resumed = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(len(seen[t]) < n for t, n in expected.items()):
            for r in stream.poll(500, 500):
                seen[r.stream].append(r.offset)
            if not paused and seen[a_topic]:
                # `a`'s parsed records are set aside; `b` gets new records, read while `a` waits.
                stream.pause([a])
                paused = True
                _produce(bootstrap, b_topic, RECORDS, RECORDS)
            elif paused and not resumed and len(seen[b_topic]) == 2 * RECORDS:
                stream.resume([a])
                resumed = True
    finally:
        stream.close()
    assert paused and resumed
    for topic, n in expected.items():
        # Every record once, in offset order: nothing lost or doubled across the pause.
        assert seen[topic] == list(range(n)), (topic, len(seen[topic]))


def _buffer_two(stream: KafkaChangeStream, topics: tuple[str, str]) -> tuple[Any, str, str]:
    """Poll one record at a time until the fetcher's in-line slot holds records of one topic
    while a fetched response of the other waits: (fetcher, in-slot topic, waiting topic)."""
    fetcher = stream.consumer._fetcher
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stream.poll(1, 200)
        slot = fetcher._next_partition_records
        waiting = {c.topic_partition.topic for c in fetcher._completed_fetches}
        if slot and slot.topic_partition.topic in topics:
            other = next(t for t in topics if t != slot.topic_partition.topic)
            if other in waiting:
                return fetcher, slot.topic_partition.topic, other
    raise AssertionError("the two topics' records were never buffered together")


def test_a_switch_of_flow_control_hands_out_the_resumed_partition_at_once(stack: Stack) -> None:
    """Pausing the partition whose parsed records are in hand and resuming one whose records were
    set aside: the next drain hands out the resumed partition's records. kafka-python's own drain
    sets the paused one aside only after its give-back, returns nothing, and the poll waits out a
    fetch of the partitions with nothing buffered (~50 ms at every switch of a catch-up)."""
    bootstrap = stack.config.kafka.bootstrap_servers
    run = uuid.uuid4().hex[:8]
    topics = (f"switch{run}.a", f"switch{run}.b")
    for topic in topics:
        _produce(bootstrap, topic, 0, RECORDS)
    stream = KafkaChangeStream.connect(
        bootstrap, f"switch-{run}", "switch-test", max_poll_records=500
    )
    try:
        stream.subscribe(f"switch{run}\\..*", lambda assigned: None)
        fetcher, first, second = _buffer_two(stream, topics)
        # `first` paused while its records are in hand: the next poll sets them aside and hands
        # out `second`'s, whose rest then stays in hand.
        stream.pause([Partition(first, 0)])
        assert {r.stream for r in stream.poll(500, 1000)} == {second}
        assert fetcher._next_partition_records, "the second topic's rest is in hand"
        # The switch: `second` paused, `first` resumed.
        stream.pause([Partition(second, 0)])
        stream.resume([Partition(first, 0)])
        stream._unstick_resumed()
        drained, _ = fetcher.fetched_records(500)
        assert {tp.topic for tp in drained} == {first}
    finally:
        stream.close()
