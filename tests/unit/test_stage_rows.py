"""The merge's staged rows: built as columns, one row per distinct (key, position).

The oracle is the row-by-row rule written out here (each event's image values in target order, then
its commit time, delete flag, op, position, transaction id and unavailable marker), against which
the column-wise build must agree, duplicates and odd images included.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.model import ChangeEvent, Column, ColumnType, Op, TableId, TableSchema
from merge.naming import TableNames
from merge.scd2 import _stage_rows
from merge.shapes import MergeTarget, StagedRows, unavailable_marker

TABLE = TableId("src", "public", "t")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SCHEMA = TableSchema(
    (Column("id", ColumnType("int64")), Column("name", ColumnType("string"))), ("id",)
)
TARGET = MergeTarget(
    TableNames("public", "t", "t_history"),
    (("id", ColumnType("int64")), ("name", ColumnType("string")), ("note", ColumnType("string"))),
    ("id",),
)


def _event(
    op: Op,
    key: int,
    position: str,
    image: dict[str, Any] | None,
    *,
    unavailable: frozenset[str] = frozenset(),
) -> ChangeEvent:
    before = image if op is Op.DELETE else None
    after = None if op is Op.DELETE else image
    return ChangeEvent(
        TABLE, op, (key,), before, after, position, T0, "tx", SCHEMA, None, op is Op.READ,
        unavailable,
    )  # fmt: skip


def _expected(events: list[ChangeEvent]) -> list[tuple[Any, ...]]:
    """The row-by-row rule: the first of each (key, position), values in target order."""
    seen: set[tuple[Any, ...]] = set()
    rows = []
    for e in events:
        if (e.key, e.position) in seen:
            continue
        seen.add((e.key, e.position))
        image = e.image or {}
        rows.append(
            (
                *(image.get(n) for n in TARGET.column_names),
                e.commit_time,
                e.op is Op.DELETE,
                e.op.value,
                e.position,
                e.tx_id,
                unavailable_marker(TARGET, sorted(e.unavailable)) if e.unavailable else None,
            )
        )
    return rows


def test_columns_hold_the_rows_of_the_row_by_row_rule() -> None:
    events = [
        _event(Op.CREATE, 1, "p1", {"id": 1, "name": "a", "note": "x"}),
        _event(Op.UPDATE, 1, "p2", {"id": 1, "name": None, "note": "y"}, unavailable=frozenset({"note"})),
        _event(Op.DELETE, 1, "p3", {"id": 1, "name": None, "note": None}),
        # An image without a target column (the source dropped it): None there.
        _event(Op.CREATE, 2, "p4", {"id": 2, "name": "b"}),
    ]  # fmt: skip
    staged = _stage_rows(TARGET, events)
    assert isinstance(staged, StagedRows)
    assert list(staged) == _expected(events)
    assert len(staged) == 4
    assert staged[1] == _expected(events)[1]
    assert staged[1:3] == _expected(events)[1:3]
    assert len(staged.columns) == 3 + 6


def test_a_duplicate_key_and_position_is_staged_once() -> None:
    events = [
        _event(Op.CREATE, 1, "p1", {"id": 1, "name": "a", "note": None}),
        _event(Op.UPDATE, 1, "p2", {"id": 1, "name": "b", "note": None}),
        _event(Op.CREATE, 1, "p1", {"id": 1, "name": "a", "note": None}),  # re-delivered
        # The same position, another key.
        _event(Op.CREATE, 2, "p1", {"id": 2, "name": "c", "note": None}),
    ]
    assert list(_stage_rows(TARGET, events)) == _expected(events)
    assert len(_stage_rows(TARGET, events)) == 3


def test_snapshot_rows_share_a_position_and_keep_each_key_once() -> None:
    # A snapshot's rows all carry the snapshot's position: keys tell them apart.
    keys = (1, 2, 3, 2)
    events = [_event(Op.READ, k, "snap", {"id": k, "name": f"n{k}", "note": None}) for k in keys]
    assert list(_stage_rows(TARGET, events)) == _expected(events)
    assert [r[0] for r in _stage_rows(TARGET, events)] == [1, 2, 3]


def test_staged_rows_without_columns_still_count_their_rows() -> None:
    empty = StagedRows([], 2)
    assert len(empty) == 2
    assert list(empty) == [(), ()]
