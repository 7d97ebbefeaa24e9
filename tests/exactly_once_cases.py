"""Exactly-once effect under a failure mid-batch, shared by every warehouse's tests.

A real session is wrapped so that one chosen statement raises after the statements before it ran
inside the batch's transaction; the warehouse must then hold neither the batch's data nor its offsets,
and a redelivery of the batch must apply it once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlglot import exp

from core.errors import MergeError
from core.model import ChangeEvent, Op, TableId
from merge import control, sqltree
from merge.ledger import Checkpoint
from merge.scd2 import Scd2Engine
from merge.session import WarehouseSession
from tests.scd2_cases import INFO, SCHEMA, T0, TABLE, warehouse_history


class Injected(RuntimeError):
    """The failure the test injects."""


class FailingSession:
    """Delegates to a real session; raises before the first statement `fails(statement)` matches.

    `error` builds the exception (a terminal `Injected` unless given); `times` bounds how often it
    fires (None: every time while armed).
    """

    def __init__(
        self,
        inner: WarehouseSession,
        fails: Any,
        error: Callable[[str], BaseException] = Injected,
        times: int | None = None,
    ) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.fails = fails
        self.error = error
        self.times = times
        self.fired = 0
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _check(self, statement: exp.Expression) -> None:
        if not (self.armed and self.fails(statement)):
            return
        if self.times is not None and self.fired >= self.times:
            return
        self.fired += 1
        raise self.error(type(statement).__name__)

    def execute(self, statement: exp.Expression, params: dict[str, Any] | None = None) -> None:
        self._check(statement)
        self.inner.execute(statement, params)

    def execute_all(self, statements: Sequence[exp.Expression]) -> None:
        for statement in statements:
            self.execute(statement)

    def executemany(self, statement: exp.Expression, rows: Sequence[Sequence[Any]]) -> None:
        self._check(statement)
        self.inner.executemany(statement, rows)


def _injected(exc: MergeError) -> bool:
    """The engine wraps a terminal driver error in a MergeError with the batch's context."""
    return isinstance(exc.__cause__, Injected) and "offsets=topic[0]@5" in str(exc)


# A second table of the same source: a batch that spans two tables commits both or neither.
TABLE_B = TableId(TABLE.source, TABLE.namespace, "items_b")


def _events(first: int, count: int, table: TableId = TABLE) -> list[ChangeEvent]:
    return [
        ChangeEvent(
            table,
            Op.CREATE if i == first else Op.UPDATE,
            (1,),
            None,
            {"id": 1, "name": f"v{i}", "qty": i},
            f"{i:08d}",
            T0 + dt.timedelta(seconds=i),
            f"t{i}",
            SCHEMA,
        )
        for i in range(first, first + count)
    ]


def is_offsets_write(statement: exp.Expression) -> bool:
    """The insert of the new offsets: the last write of a batch."""
    target = statement.find(exp.Table)
    return (
        isinstance(statement, exp.Insert) and target is not None and target.name == control.OFFSETS
    )


def is_relink(statement: exp.Expression) -> bool:
    """The relink UPDATE of the history table: the middle of a table's merge."""
    return isinstance(statement, exp.Update) and statement.this.name.endswith("_history")


def check_failure_leaves_nothing(session: WarehouseSession, fails: Any) -> None:
    """Batch 1 commits; batch 2 fails at `fails`; then batch 2 is redelivered and applied once."""
    failing = FailingSession(session, fails)
    engine = Scd2Engine(failing, "g")  # type: ignore[arg-type]
    engine.apply({TABLE: _events(0, 2)}, INFO, [Checkpoint("topic", 0, 2)])
    before = warehouse_history(session)
    failing.armed = True
    try:
        engine.apply({TABLE: _events(2, 3)}, INFO, [Checkpoint("topic", 0, 5)])
    except MergeError as exc:
        assert _injected(exc), exc
    else:
        raise AssertionError("the injected failure did not fire")
    failing.armed = False
    assert warehouse_history(session) == before
    assert Scd2Engine(session, "g").stored_checkpoints() == {("topic", 0): 2}
    # The consumer resumes at offset 2 and gets batch 2 again: applied exactly once.
    engine.apply({TABLE: _events(2, 3)}, INFO, [Checkpoint("topic", 0, 5)])
    history = warehouse_history(session)
    assert [r[8] for r in history] == [f"{i:08d}" for i in range(5)]
    assert [r[5] for r in history] == [False] * 4 + [True]
    assert Scd2Engine(session, "g").stored_checkpoints() == {("topic", 0): 5}


def _history_b(session: WarehouseSession) -> list[tuple[Any, ...]]:
    query = (
        exp.select(
            sqltree.col("id"), sqltree.col("_cdc_source_pos"), sqltree.col("_cdc_is_current")
        )
        .from_(sqltree.table("items_b_history", TABLE_B.source))
        .order_by(sqltree.col("id"), sqltree.col("_cdc_source_pos"))
    )
    return [tuple(r) for r in session.query(query)]


def check_two_tables_fail_together(session: WarehouseSession) -> None:
    """A batch of two tables failing in the second table's merge leaves nothing of the first.

    On a warehouse whose DDL commits the open transaction (Snowflake), creating the second table's
    stage inside the batch would commit the first table's merge; this is the test for that.
    """
    failing = FailingSession(
        session, lambda s: isinstance(s, exp.Update) and s.this.name == "items_b_history"
    )
    engine = Scd2Engine(failing, "g")  # type: ignore[arg-type]
    infos = {**INFO, TABLE_B: INFO[TABLE]}
    first = {TABLE: _events(0, 2), TABLE_B: _events(0, 2, TABLE_B)}
    engine.apply(first, infos, [Checkpoint("topic", 0, 2)])
    before = (warehouse_history(session), _history_b(session))
    failing.armed = True
    second = {TABLE: _events(2, 3), TABLE_B: _events(2, 3, TABLE_B)}
    try:
        engine.apply(second, infos, [Checkpoint("topic", 0, 5)])
    except MergeError as exc:
        assert _injected(exc), exc
    else:
        raise AssertionError("the injected failure did not fire")
    failing.armed = False
    assert (warehouse_history(session), _history_b(session)) == before
    assert Scd2Engine(session, "g").stored_checkpoints() == {("topic", 0): 2}
    engine.apply(second, infos, [Checkpoint("topic", 0, 5)])
    assert len(warehouse_history(session)) == len(_history_b(session)) == 5


def check_retryable_failure_is_retried_once(
    session: WarehouseSession, fails: Any, error: Callable[[str], BaseException]
) -> None:
    """A retryable error mid-batch: the engine retries the whole transaction; the effect is once."""
    failing = FailingSession(session, fails, error=error, times=1)
    engine = Scd2Engine(failing, "g")  # type: ignore[arg-type]
    engine.apply({TABLE: _events(0, 2)}, INFO, [Checkpoint("topic", 0, 2)])
    failing.armed = True
    engine.apply({TABLE: _events(2, 3)}, INFO, [Checkpoint("topic", 0, 5)])
    assert failing.fired == 1, "the injected failure did not fire"
    history = warehouse_history(session)
    assert [r[8] for r in history] == [f"{i:08d}" for i in range(5)]
    assert [r[5] for r in history] == [False] * 4 + [True]
    assert Scd2Engine(session, "g").stored_checkpoints() == {("topic", 0): 5}
