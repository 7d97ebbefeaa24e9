"""`dead_letters.topic`: the Kafka copy of the dead-letter store, through the real run loop.

The run (in-memory stream, real DuckDB warehouse) stores a poison record as a dead letter naming the
copy topic; `DeadLetterTopic` produces it after the commit with the error context in headers and
records `copied_at`. The producer here is a recording stand-in (the real broker is in
tests/integration/test_dead_letters.py): a broker that refuses leaves the letter waiting and a later
round copies it; letters stored without a topic are never copied. The store's copy columns on every
warehouse (and their migration): tests/behaviour/suite.py.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from cdc_consumers.runner import Runner
from connectors.dead_letter_topic import CHECK_INTERVAL_S, HEADER_PREFIX, DeadLetterTopic
from connectors.warehouses.duckdb.client import DuckDBSession
from core.config import DeadLetterConfig, HubConfig, load_config
from core.errors import ConfigError
from merge import dead_letters
from tests.recording_producer import RecordingProducer
from tests.unit.test_runner_liveness import Workload, _config

GROUP = "cdchub"
TOPIC = "cdchub.dead_letters"
GARBAGE = b'{"schema":{"type":"struct"},"garbage":1}'


def _with_topic(config: HubConfig, topic: str | None = TOPIC) -> HubConfig:
    return config.model_copy(update={"dead_letters": DeadLetterConfig(topic=topic)})


def _poisoned(tmp_path: Path) -> tuple[Workload, HubConfig]:
    w = Workload()
    w.transaction([("orders", 1, "new")])
    w.stream.append("shop.public.orders", b'{"id":1}', GARBAGE)
    w.transaction([("customers", 7, "Ann")])
    return w, _config(tmp_path / "wh.duckdb", transaction_timeout_s=0.2)


def _run(config: HubConfig, session: DuckDBSession, w: Workload, topic: DeadLetterTopic) -> None:
    runner = Runner(
        config,
        session,
        progress=lambda _m: None,
        stream_factory=w.stream.factory(),
        between_batches=topic.publish,
    )
    result = runner.run(until_idle=0.2, max_seconds=30, handle_signals=False)
    assert result.stopped_by == "idle", result.waiting


def _topic(config: HubConfig, producer: RecordingProducer, ensured: list[str]) -> DeadLetterTopic:
    # Every look is due: the run calls the hook between batches, and which call comes after the
    # letter's batch committed depends on the run's pipelining, not on what is tested here.
    ticks = itertools.count(step=CHECK_INTERVAL_S)
    return DeadLetterTopic(
        config,
        producer_factory=lambda _servers: producer,
        ensure_topic=lambda _servers, topic: ensured.append(topic),
        clock=lambda: float(next(ticks)),
    )


def test_a_dead_letter_is_copied_with_its_bytes_and_error_headers_once(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    w, base = _poisoned(tmp_path)
    config = _with_topic(base)
    producer, ensured = RecordingProducer(), []
    topic = _topic(config, producer, ensured)
    _run(config, warehouse, w, topic)
    [letter] = dead_letters.letters(warehouse, GROUP)
    assert letter.copy_topic == TOPIC and letter.copied_at is not None
    assert ensured == [TOPIC]
    [sent] = producer.sent
    assert sent["topic"] == TOPIC
    assert sent["key"] == b'{"id":1}' and sent["value"] == GARBAGE  # as read, untouched
    headers = {k.removeprefix(HEADER_PREFIX): v.decode() for k, v in sent["headers"]}
    assert headers["topic"] == "shop.public.orders"
    assert headers["partition"] == "0" and headers["offset"] == str(letter.record_offset)
    assert headers["stage"] == "decode" and headers["exception.message"] == letter.error
    assert headers["table"] == "shop.public.orders"
    assert headers["letter.id"] == letter.letter_id and headers["status"] == "open"
    assert headers["consumer.group"] == GROUP
    assert set(headers) >= {"source.position", "event.key"}
    # Copied once: later rounds (and another run) send nothing again.
    assert topic.publish(warehouse, force=True) == 0
    _run(config, warehouse, w, topic)
    assert len(producer.sent) == 1
    topic.close()
    assert producer.closed


def test_a_refused_copy_waits_in_the_warehouse_and_a_later_round_sends_it(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    w, base = _poisoned(tmp_path)
    config = _with_topic(base)
    producer = RecordingProducer()
    producer.refuse = TimeoutError("no broker")
    topic = _topic(config, producer, [])
    _run(config, warehouse, w, topic)  # the run is not stopped by the refusal
    [letter] = dead_letters.letters(warehouse, GROUP)
    assert letter.copy_topic == TOPIC and letter.copied_at is None
    assert producer.sent == []
    assert dead_letters.uncopied(warehouse, GROUP) == {TOPIC: 1}  # `cdchub status` shows it
    producer.refuse = None
    assert topic.publish(warehouse, force=True) == 1
    assert [s["value"] for s in producer.sent] == [GARBAGE]
    [letter] = dead_letters.letters(warehouse, GROUP)
    assert letter.copied_at is not None
    assert dead_letters.uncopied(warehouse, GROUP) == {}


def test_letters_stored_without_a_topic_are_never_copied(
    tmp_path: Path, warehouse: DuckDBSession
) -> None:
    w, config = _poisoned(tmp_path)
    producer = RecordingProducer()
    _run(config, warehouse, w, _topic(config, producer, []))
    [letter] = dead_letters.letters(warehouse, GROUP)
    assert letter.copy_topic is None
    # A topic configured later copies the letters stored from then on, not the earlier ones.
    later = _topic(_with_topic(config), producer, [])
    assert later.publish(warehouse, force=True) == 0
    assert producer.sent == []


def _load(tmp_path: Path, topic: str) -> HubConfig:
    path = tmp_path / "cdchub.yaml"
    path.write_text(
        "sources:\n"
        "  - {name: shop, kind: postgres, port: 1, database: shop, user: u, password: p}\n"
        f"dead_letters:\n  topic: {topic!r}\n"
    )
    return load_config(path)


def test_the_topic_option_is_checked(tmp_path: Path) -> None:
    assert _load(tmp_path, "cdchub.dead_letters").dead_letters.topic == "cdchub.dead_letters"
    with pytest.raises(ConfigError, match="not a Kafka topic name"):
        _load(tmp_path, "dead letters")
    # `shop.…` is the source's topic space: the run would read its own letters back.
    with pytest.raises(ConfigError, match="topic space"):
        _load(tmp_path, "shop.dead_letters")
