"""The hook through which observability watches a merge, without `merge/` knowing OpenTelemetry.

The engine wraps each table's merge in `observer.merge_table(...)`; the observability layer
(`ops.tracing`) implements it with a span and counts events by operation. The default
observer does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

from core.model import ChangeEvent, TableId
from merge.naming import TableNames


class ApplyObserver(Protocol):
    """Watches the stages of `Scd2Engine.apply`."""

    def merge_table(
        self, table: TableId, names: TableNames, events: Sequence[ChangeEvent]
    ) -> AbstractContextManager[object]:
        """A block around the merge of one table's events of a batch."""
        ...


class NullObserver:
    """Observes nothing."""

    def merge_table(
        self, table: TableId, names: TableNames, events: Sequence[ChangeEvent]
    ) -> AbstractContextManager[object]:
        """An empty block."""
        return nullcontext()
