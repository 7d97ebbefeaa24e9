"""Source positions: strings that sort in source commit order, built from Debezium's `source` block.

A position identifies one change for idempotency (the same change re-delivered has the same position)
and orders the versions of a key. Each part is zero-padded so plain string comparison is the order,
in every warehouse, without parsing.

PostgreSQL (pgoutput): `source.sequence` is `["<lsn of the last commit before this tx>", "<lsn>"]`.
Transactions are decoded in commit order, so the previous commit's LSN orders transactions, and the
change LSN orders events inside one. Several events can share one LSN (a primary-key update arrives
as delete + create at the same LSN), so the transaction's `total_order` breaks the tie. The first
transaction after a connector start has no previous commit; its own first change LSN is used instead,
which is greater than every earlier commit's LSN.

MariaDB/MySQL: the binlog is written in commit order, so (binlog file number, event position, row in
event) orders changes; `total_order` again breaks ties.

Snapshot rows carry the snapshot's position and an order of 0: they sort before every change streamed
after the snapshot.
"""

from __future__ import annotations

import re
from typing import Any

from cdc_consumers import jsonfast

_DIGITS = re.compile(r"(\d+)$")
WIDTH = 20


def _pad(value: int | str | None) -> str:
    return f"{int(value or 0):020d}"  # WIDTH digits


def _lsn(value: Any) -> int:
    """An LSN as an integer; Debezium sends it as a number, or `X/Y` hex text in some places."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if "/" in text:
        hi, lo = text.split("/", 1)
        return (int(hi, 16) << 32) | int(lo, 16)
    return int(text)


def postgres_position(source: dict[str, Any], total_order: int | None) -> str:
    """The position of a PostgreSQL change (see module docstring)."""
    lsn = _lsn(source.get("lsn"))
    previous_commit: int | None = None
    sequence = source.get("sequence")
    if sequence:
        parts = jsonfast.loads(sequence) if isinstance(sequence, str) else sequence
        if parts and parts[0] is not None:
            previous_commit = _lsn(parts[0])
    tx_key = previous_commit if previous_commit is not None else lsn
    # `_pad` written out (a hot path: one call per event, not three).
    return f"{tx_key:020d}.{lsn:020d}.{int(total_order or 0):020d}"


def binlog_position(source: dict[str, Any], total_order: int | None) -> str:
    """The position of a MariaDB/MySQL change (see module docstring)."""
    match = _DIGITS.search(str(source.get("file") or ""))
    file_no = int(match.group(1)) if match else 0
    return (
        f"{_pad(file_no)}.{_pad(source.get('pos'))}.{_pad(source.get('row'))}.{_pad(total_order)}"
    )
