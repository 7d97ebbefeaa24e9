"""Signals that stop a long-running command the way Ctrl-C does."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def interrupted_by(*signals: signal.Signals) -> Iterator[None]:
    """Within the block, each of `signals` raises KeyboardInterrupt in the main thread (so
    `finally` blocks run); the previous handlers come back after it.

    Installed explicitly, so SIGINT works also in a process started with it ignored (a script's
    background job inherits that, and Python then leaves it ignored).
    """
    previous = {sig: signal.signal(sig, _interrupt) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
