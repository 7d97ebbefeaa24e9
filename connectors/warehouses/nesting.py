"""Nested transaction blocks on one connection: the outermost block begins and ends the transaction.

The engine opens a transaction per batch and the ledger writers open their own blocks inside it; a
warehouse has one transaction per connection, so an inner block must join the outer one rather than
begin (or commit) anything. Every client, and the tracing wrapper of a run, counts depth with this
one class instead of each keeping its own counter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager


class NestedTransaction:
    """Depth of the transaction blocks open on one connection."""

    def __init__(self) -> None:
        self.depth = 0

    @property
    def open(self) -> bool:
        """A transaction is open (some block has begun it and not ended it yet)."""
        return self.depth > 0

    @contextmanager
    def block(self, outermost: Callable[[], AbstractContextManager[object]]) -> Iterator[None]:
        """A transaction block: `outermost()` runs the transaction when no block is open yet.

        An inner block joins the open transaction: it neither begins, commits nor rolls back; an
        error it raises reaches the outermost block, which rolls back.
        """
        if self.depth:
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
            return
        self.depth = 1
        try:
            with outermost():
                yield
        finally:
            self.depth = 0


@contextmanager
def begin_commit(
    run: Callable[[str], object], begin: str, commit: str, rollback: str
) -> Iterator[None]:
    """A transaction as three statements: `begin`; then `commit` on success, `rollback` on error."""
    run(begin)
    try:
        yield
    except BaseException:
        run(rollback)
        raise
    else:
        run(commit)
