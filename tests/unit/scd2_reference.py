"""A tiny in-memory SCD Type 2 reference model: the oracle the warehouse engine is compared with.

It knows nothing of SQL: it takes the set of distinct changes ever delivered and derives the history
from first principles (sort each key's changes by position, link each to the next).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.model import ChangeEvent, Op


def reference_history(events: list[ChangeEvent]) -> list[tuple[Any, ...]]:
    """Rows (key, values..., valid_from, valid_to, is_current, is_deleted, op, pos), sorted."""
    distinct: dict[tuple[Any, ...], ChangeEvent] = {}
    truncates: dict[str, ChangeEvent] = {}
    for e in events:
        if e.op is Op.TRUNCATE:
            truncates.setdefault(e.position, e)
        else:
            distinct.setdefault((e.key, e.position), e)
    by_key: dict[tuple[Any, ...], list[tuple[str, dt.datetime, str, dict[str, Any] | None]]] = {}
    for (key, pos), e in distinct.items():
        by_key.setdefault(key, []).append((pos, e.commit_time, e.op.value, e.image))
    # A truncate closes every key that is live just before it (in position order).
    for pos, t in sorted(truncates.items()):
        for versions in by_key.values():
            before = sorted(v for v in versions if v[0] < pos)
            if before and before[-1][2] not in ("d", "t"):
                versions.append((pos, t.commit_time, "t", dict(before[-1][3] or {})))
    rows = []
    for key, versions in by_key.items():
        versions.sort(key=lambda v: v[0])
        # Validity never runs backwards along positions: a version starts at the earliest commit time
        # of itself and its successors (a snapshot row read after later commits is superseded at once).
        earliest: dt.datetime | None = None
        for i in range(len(versions) - 1, -1, -1):
            pos, when, op, image = versions[i]
            earliest = when if earliest is None else min(when, earliest)
            versions[i] = (pos, earliest, op, image)
        previous: dict[str, Any] | None = None
        for i, (pos, when, op, image) in enumerate(versions):
            nxt = versions[i + 1] if i + 1 < len(versions) else None
            values = dict(image or {})
            if op == "d" and previous is not None:
                values = dict(previous)
            rows.append(
                (
                    key,
                    values.get("name"),
                    values.get("qty"),
                    when,
                    nxt[1] if nxt else None,
                    nxt is None,
                    op in ("d", "t"),
                    op,
                    pos,
                )
            )
            previous = values
    return sorted(rows, key=lambda r: (r[0], r[8]))
