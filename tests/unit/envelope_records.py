"""Kafka-shaped records built from the captured Debezium envelopes (tests/fixtures)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "debezium_envelopes.json"
ENVELOPES: dict[str, dict[str, Any]] = json.loads(FIXTURES.read_text())


@dataclass(frozen=True)
class Record:
    """The fields of a kafka-python ConsumerRecord the runner reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None


def make_record(name: str, shift_commit_s: float | None = None) -> Record:
    raw = ENVELOPES[name]
    value = raw["value"]
    if value is not None and shift_commit_s is not None:
        doc = json.loads(value)
        source = doc["payload"]["source"]
        moved_ms = int((time.time() + shift_commit_s) * 1000)
        source["ts_ms"], source["ts_us"], source["ts_ns"] = (
            moved_ms,
            moved_ms * 1000,
            moved_ms * 1_000_000,
        )
        value = json.dumps(doc, separators=(",", ":"))
    return Record(
        raw["topic"],
        raw["partition"],
        raw["offset"],
        raw["key"].encode() if raw["key"] is not None else None,
        value.encode() if value is not None else None,
        int(time.time() * 1000),
    )
