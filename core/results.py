"""What each stage did, as plain records that logs, metrics and the CLI read.

`merge` returns a `BatchResult` per applied batch (one `TableResult` per table); the runner adds them
up into a `RunResult`. They hold only the change model's types, so every layer may read them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from core.model import TableId


@dataclass
class TableResult:
    """What one table's merge did in one batch."""

    table: TableId
    events: int
    versions: int
    lags_ms: list[float] = field(default_factory=list)


@dataclass
class BatchResult:
    """What one batch did: per-table results and the warehouse commit time."""

    batch_id: str
    tables: list[TableResult]
    committed_at: dt.datetime

    @property
    def events(self) -> int:
        """Change events applied, over every table."""
        return sum(t.events for t in self.tables)

    @property
    def versions(self) -> int:
        """History versions written, over every table."""
        return sum(t.versions for t in self.tables)


@dataclass
class RunResult:
    """What a run applied, for the CLI summary and the demo."""

    batches: int = 0
    events: int = 0
    versions: int = 0
    per_table: dict[str, int] = field(default_factory=dict)
    lags_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    # Time the main thread waited for the apply thread (a batch ready before the last committed).
    apply_wait_s: float = 0.0
    stopped_by: str = ""
    forced_releases: int = 0
    # What the run still waited for when it stopped (transactions, partitions not read to the end).
    waiting: list[str] = field(default_factory=list)
    # Tables this run stopped for an incompatible type change, one line each (`StoppedTable.describe`).
    stopped_tables: list[str] = field(default_factory=list)
