"""The optional Kafka copy of the dead-letter store (`dead_letters.topic`).

The warehouse table `_cdchub.dead_letters` is the record of truth: a letter is stored there in the
transaction of its batch, naming the topic it is to be copied to (`copy_topic`). This service, called
by `cdchub run` between batches, produces every stored letter not copied yet to that topic, waits for
the broker's acknowledgement (acks=all), then records `copied_at`. A copy is therefore produced only
after the warehouse committed its letter, and is never lost: a letter whose copy failed (broker
down) or whose run died before `copied_at` was written is produced again later. The topic is
at-least-once: a consumer that must not see a letter twice dedupes on `__cdchub.errors.letter.id`.

Each copy is the record as it was read (key and value bytes, its timestamp) with the error context in
headers named like Kafka Connect's dead-letter-queue headers (`__connect.errors.*`), under
`__cdchub.errors.`: the original topic, partition and offset, the stage (decode or apply), the error
message, the table, the event key, the source position, the letter id, its status, the consumer group.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from core.config import HubConfig
from merge import dead_letters
from merge.session import WarehouseSession

log = logging.getLogger(__name__)

HEADER_PREFIX = "__cdchub.errors."
# How often pending letters are looked for between batches (one small query on the warehouse).
CHECK_INTERVAL_S = 5.0
# Letters produced per round; the rest follow in the next.
ROUND = 500
# How long a round waits for the broker's acknowledgements.
ACK_TIMEOUT_S = 30.0


def headers(letter: dead_letters.DeadLetter) -> list[tuple[str, bytes]]:
    """The error context of a letter as Kafka record headers (UTF-8 strings)."""
    values = {
        "topic": letter.topic,
        "partition": str(letter.partition),
        "offset": str(letter.record_offset),
        "stage": letter.error_kind,
        "exception.message": letter.error,
        "table": f"{letter.source}.{letter.table_name}",
        "event.key": letter.event_key,
        "source.position": letter.source_position,
        "letter.id": letter.letter_id,
        "status": letter.status,
        "consumer.group": letter.consumer_group,
    }
    return [(HEADER_PREFIX + name, value.encode()) for name, value in values.items()]


def _kafka_producer(bootstrap_servers: str) -> Any:
    """A producer that waits for every in-sync replica and never reorders or doubles on retry."""
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id="cdchub-dead-letters",
        acks="all",
        enable_idempotence=True,
        # A letter is a record Debezium wrote, plus headers: allow it past the 1 MiB default
        # (the broker's `message.max.bytes` still decides).
        max_request_size=16 * 1024 * 1024,
        max_block_ms=int(ACK_TIMEOUT_S * 1000),
    )


def _ensure_topic(bootstrap_servers: str, topic: str) -> None:
    """Create the topic with the broker's default partitions and replication when it is missing.

    Created beforehand by an admin, it keeps the settings the admin chose.
    """
    from kafka import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="cdchub-dead-letters")
    try:
        if topic in set(admin.list_topics()):
            return
        try:
            admin.create_topics({topic: {}}, wait_for_metadata=True)
            log.info("created the dead-letter topic %s", topic)
        except TopicAlreadyExistsError:
            pass
    finally:
        admin.close()


class DeadLetterTopic:
    """Copies stored dead letters to `dead_letters.topic` (does nothing when none is configured).

    Call it with the run's session between batches (`publish`); `close` releases the producer.
    """

    def __init__(
        self,
        config: HubConfig,
        producer_factory: Callable[[str], Any] = _kafka_producer,
        ensure_topic: Callable[[str, str], None] = _ensure_topic,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = config.dead_letters.topic
        self.group = config.kafka.group_id
        self.bootstrap_servers = config.kafka.bootstrap_servers
        self._producer_factory = producer_factory
        self._ensure_topic = ensure_topic
        self._clock = clock
        self._producer: Any = None
        self._ensured: set[str] = set()
        self._checked_at = -1e9
        self._warned = False
        self.copied = 0

    def publish(self, session: WarehouseSession, *, force: bool = False) -> int:
        """Copy the letters stored but not copied yet; the number copied.

        Looks at most every `CHECK_INTERVAL_S` unless `force`. A broker that does not answer is
        logged (once until it answers again) and tried again later: it never stops the run.
        """
        if self.topic is None:
            return 0
        now = self._clock()
        if not force and now - self._checked_at < CHECK_INTERVAL_S:
            return 0
        self._checked_at = now
        total = 0
        try:
            while True:
                pending = dead_letters.letters(session, self.group, to_copy=True, limit=ROUND)
                if not pending:
                    break
                total += self._copy(session, pending)
                if len(pending) < ROUND:
                    break
        except Exception as exc:  # the copy must never stop the pipeline; the letters wait
            if not self._warned:
                log.warning(
                    "dead letters not copied to Kafka topic %s yet (%s); they stay in the "
                    "warehouse and are copied when the broker answers",
                    self.topic,
                    exc,
                )
                self._warned = True
            return total
        self._warned = False
        return total

    def _copy(self, session: WarehouseSession, letters: list[dead_letters.DeadLetter]) -> int:
        """Produce `letters` to their topics, wait for the acks, then mark the acknowledged copied.

        Raises:
            Exception: what the broker answered for a letter not acknowledged (after the others
                were marked).
        """
        for topic in sorted({str(letter.copy_topic) for letter in letters} - self._ensured):
            self._ensure_topic(self.bootstrap_servers, topic)
            self._ensured.add(topic)
        if self._producer is None:
            self._producer = self._producer_factory(self.bootstrap_servers)
        futures = [
            self._producer.send(
                str(letter.copy_topic),
                key=letter.record_key,
                value=letter.record_value,
                headers=headers(letter),
                # The record's own time, as Kafka Connect's dead-letter queue keeps it.
                timestamp_ms=letter.record_timestamp or None,
            )
            for letter in letters
        ]
        self._producer.flush(timeout=ACK_TIMEOUT_S)
        acked: list[str] = []
        failed: Exception | None = None
        for letter, future in zip(letters, futures, strict=True):
            try:
                future.get(timeout=ACK_TIMEOUT_S)
            except Exception as exc:  # this letter waits for the next round
                failed = failed or exc
            else:
                acked.append(letter.letter_id)
        with session.transaction():
            dead_letters.mark_copied(session, self.group, acked)
        self.copied += len(acked)
        if failed is not None:
            raise failed
        return len(acked)

    def close(self) -> None:
        """Release the producer (what it holds was acknowledged already)."""
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
