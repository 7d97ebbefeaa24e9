"""The GIL's switch interval for a consumer whose two threads share it.

The consumer's thread decodes in Python almost all the time; the apply thread mostly waits on the
warehouse driver, which releases the GIL while a statement runs. Each time a statement returns, the
apply thread must take the GIL back, and CPython makes it wait for the holder's switch interval
(5 ms by default). With a busy decoding thread, 200 one-row DuckDB updates took 4.6 s at 5 ms,
1.1 s at 1 ms and 0.12 s with the decoding thread idle, measured; the decoding thread lost ~8% of
its pace. End to end the catch-up bench gained 8-21% (docs/benchmarks.md), so a run switches at 1 ms.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

# How long a thread holding the GIL runs before it hands it to a waiting one, during a run.
SWITCH_INTERVAL_S = 0.001


@contextlib.contextmanager
def quick_handoffs(interval_s: float = SWITCH_INTERVAL_S) -> Iterator[None]:
    """Run the block with the GIL's switch interval at `interval_s`; the previous one after it."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(interval_s)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
