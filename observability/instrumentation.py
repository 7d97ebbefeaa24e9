"""What the runner calls around its stages; the null version does nothing and costs nothing.

`cdc_consumers.runner.Runner` takes one of these. `observability.tracing.RunInstrumentation` is the
real one (spans and metrics); `NoInstrumentation` keeps the runner free of `if` branches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from cdc_consumers.model import ChangeEvent, TableId
from merge.naming import TableNames
from merge.scd2 import BatchResult
from merge.session import WarehouseSession


class BatchWatch:
    """Handed to the runner for one batch; told what the batch did once it committed."""

    def applied(self, batch: BatchResult) -> None:
        """The batch committed in the warehouse."""


class NoInstrumentation:
    """Instrumentation that records nothing."""

    def wrap_session(self, session: WarehouseSession) -> WarehouseSession:
        """The session itself."""
        return session

    @contextmanager
    def batch(self, records: Sequence[Any], polled_at_ns: int) -> Iterator[BatchWatch]:
        """A block around decoding and applying one polled batch."""
        yield BatchWatch()

    def decode(self, records: int) -> AbstractContextManager[object]:
        """A block around decoding the batch's records."""
        return nullcontext()

    def merge_table(
        self, table: TableId, names: TableNames, events: Sequence[ChangeEvent]
    ) -> AbstractContextManager[object]:
        """A block around one table's merge (`merge.observer.ApplyObserver`)."""
        return nullcontext()

    def transactions_forced(self, source: str, reason: str, count: int) -> None:
        """Count transactions applied without transaction consistency."""

    def table_stopped(self, table: TableId) -> None:
        """A table stopped for an incompatible column type change (`cdchub.tables.stopped`)."""

    def sample(self, consumer: Any) -> None:
        """Sample consumer lag and heartbeats (rate-limited by the implementation)."""

    def close(self) -> None:
        """Release what the instrumentation holds."""
