"""Progress on long work: a rich bar when stderr is a terminal, plain lines (on change) otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol


class Bar(Protocol):
    """Something that shows `done` of `total`."""

    def __call__(self, done: int, total: int) -> None: ...


class _PlainBar:
    """One line per change, at most every `every_s` seconds (logs and CI read these)."""

    def __init__(self, label: str, every_s: float = 2.0) -> None:
        self.label = label
        self.every_s = every_s
        self._last: tuple[int, int] | None = None
        self._at = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if (done, total) == self._last or now - self._at < self.every_s:
            return
        self._last, self._at = (done, total), now
        print(f"{self.label}: {done}/{total}", file=sys.stderr, flush=True)


@contextmanager
def progress_bar(label: str, *, force_plain: bool = False) -> Iterator[Bar]:
    """A bar for one long task; rich on a terminal, plain lines otherwise."""
    if force_plain or not sys.stderr.isatty():
        yield _PlainBar(label)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        f"[bold]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as rich_progress:
        task: Any = rich_progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            rich_progress.update(task, completed=done, total=max(total, done) or None)

        yield update
