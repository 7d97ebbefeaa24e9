"""The cyclic garbage collector's settings for a process that holds whole batches of decoded rows.

A batch keeps tens of thousands of decoded dicts alive until it commits. With CPython's defaults
(a young collection every 700 allocations, full collections as the old generation grows) the
collector walks them again and again, and every module object imported at start-up with them:
measured on a Debezium decode loop it cost about as much as the decoding. Batches hold no reference
cycles worth collecting early, so collections are made rarer, and what exists at start-up (modules,
classes, caches) is frozen out of every collection.
"""

from __future__ import annotations

import gc

# Young collections every 50,000 net allocations instead of 700; older ones 20 and 100 times rarer.
BATCH_THRESHOLDS = (50_000, 20, 100)


def tune_for_batches() -> None:
    """Freeze what exists now out of the collector's walks and make collections rarer.

    Idempotent; affects the whole process (a `cdchub run` process is one consumer loop).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*BATCH_THRESHOLDS)
