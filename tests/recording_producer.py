"""A stand-in for kafka-python's `KafkaProducer` in unit tests: it records what is sent.

The real broker is exercised by the integration tests (tests/integration/test_dead_letters.py).
"""

from __future__ import annotations

from typing import Any


class _Future:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float) -> None:
        if self.error is not None:
            raise self.error


class RecordingProducer:
    """Records each send; with `refuse` set the broker answers every send with that error."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.refuse: Exception | None = None
        self.closed = False

    def send(self, topic: str, **kwargs: Any) -> _Future:
        if self.refuse is None:
            self.sent.append({"topic": topic, **kwargs})
        return _Future(self.refuse)

    def flush(self, timeout: float) -> None:
        pass

    def close(self, timeout: float) -> None:
        self.closed = True
