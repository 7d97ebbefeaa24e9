"""Progress on long work: a rich bar when stderr is a terminal, plain lines (on change) otherwise."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
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
        self._latest: tuple[int, int] | None = None
        self._at = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        self._latest = (done, total)
        if (done, total) == self._last or now - self._at < self.every_s:
            return
        self._last, self._at = (done, total), now
        print(f"{self.label}: {done}/{total}", file=sys.stderr, flush=True)

    def finish(self) -> None:
        """Print the final count when the rate limit held it back (the last line is the result)."""
        if self._latest is not None and self._latest != self._last:
            self._at = 0.0
            self(*self._latest)


@contextmanager
def progress_bar(label: str, *, force_plain: bool = False) -> Iterator[Bar]:
    """A bar for one long task; rich on a terminal, plain lines otherwise."""
    if force_plain or not sys.stderr.isatty():
        plain = _PlainBar(label)
        yield plain
        plain.finish()
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


@contextmanager
def optional_bar(label: str, wanted: bool) -> Iterator[Bar | None]:
    """`progress_bar(label)` when `wanted` (work will be done), else None (a plan only)."""
    if not wanted:
        yield None
        return
    with progress_bar(label) as bar:
        yield bar


# The counters long work repeats: the run's ("run: 120 events applied in 3 batches") and the demo
# workload's ("workload: 800/3000 changes, 160 tx, 399/s"). Any other message is printed as it is.
_COUNTER = re.compile(r"^(?P<label>run|workload): \d")


class _PlainLines:
    """Messages as plain lines on stderr, a line equal to the one before it dropped."""

    def __init__(self) -> None:
        self._last: str | None = None

    def __call__(self, message: str) -> None:
        if message == self._last:
            return
        self._last = message
        print(message, file=sys.stderr, flush=True)


@contextmanager
def run_progress(*, force_plain: bool = False) -> Iterator[Callable[[str], None]]:
    """The progress callback for a consuming run (`cdchub run`, the demo's drain).

    On a terminal each counter (the run's "run: N events applied in M batches", the workload's
    "workload: N/M changes, …") updates ONE live line of its own and every other message prints
    above them; otherwise messages are plain lines, and a line equal to the one before it is not
    printed again.
    """
    if force_plain or not sys.stderr.isatty():
        yield _PlainLines()
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as rich_progress:
        tasks: dict[str, Any] = {}

        def show(message: str) -> None:
            counter = _COUNTER.match(message)
            if counter:
                label = counter["label"]
                if label not in tasks:
                    tasks[label] = rich_progress.add_task("", total=None)
                rich_progress.update(tasks[label], description=escape(message))
            else:
                rich_progress.console.print(message, markup=False, highlight=False)

        yield show
