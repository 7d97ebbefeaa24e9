"""What the runner calls around its stages; the null version does nothing and costs nothing.

`cdc_consumers.runner.Runner` takes one of these. `ops.tracing.RunInstrumentation` is the
real one (spans and metrics); `NoInstrumentation` keeps the runner free of `if` branches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from core.model import ChangeEvent, TableId
from core.results import BatchResult

S = TypeVar("S")


class HistoryName(Protocol):
    """Where a table's history lives (`merge.naming.TableNames` satisfies it).

    A protocol, so that this leaf needs nothing of `merge`.
    """

    @property
    def schema(self) -> str: ...

    @property
    def history(self) -> str: ...


@dataclass(frozen=True)
class BatchTimes:
    """When a batch was read and decoded (wall-clock ns), and the time spent decoding it.

    The runner decodes each poll's records as they arrive, interleaved with polling, and applies the
    batch later, on its apply thread, while the next batch is read: the stages are passed as times.
    """

    polled_at_ns: int
    received_ns: int
    decode_s: float = 0.0


class BatchWatch:
    """Handed to the runner for one batch; told what the batch did once it committed."""

    def applied(self, batch: BatchResult) -> None:
        """The batch committed in the warehouse."""


class NoInstrumentation:
    """Instrumentation that records nothing."""

    def wrap_session(self, session: S) -> S:
        """The session itself."""
        return session

    @contextmanager
    def batch(self, records: Sequence[Any], times: BatchTimes) -> Iterator[BatchWatch]:
        """A block around applying one batch (on the runner's apply thread); `times` says when
        its records were read and how long decoding them took."""
        yield BatchWatch()

    def merge_table(
        self, table: TableId, names: HistoryName, events: Sequence[ChangeEvent]
    ) -> AbstractContextManager[object]:
        """A block around one table's merge (`merge.observer.ApplyObserver`)."""
        return nullcontext()

    def transactions_forced(self, source: str, reason: str, count: int) -> None:
        """Count transactions applied without transaction consistency."""

    def dead_lettered(self, source: str, table: str, status: str) -> None:
        """Count an event sent to the dead-letter store (`cdchub.dlq.events`)."""

    def table_stopped(self, table: TableId) -> None:
        """A table stopped for an incompatible column type change (`cdchub.tables.stopped`)."""

    def sample(self, consumer: Any) -> None:
        """Sample consumer lag and heartbeats (rate-limited by the implementation)."""

    def close(self) -> None:
        """Release what the instrumentation holds."""
