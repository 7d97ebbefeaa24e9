"""Transaction plumbing the workload shares on both databases: one open transaction (`Tx`), the
simulated business clock (`Clock`) and the interface of one demo database's operations (`Business`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

# The largest PostgreSQL integer / MariaDB INT: counters are capped there, not overflowed.
INT4_MAX = 2_147_483_647


class Tx:
    """One open transaction: runs statements and counts the rows they change until commit."""

    def __init__(self, conn: Any, *, mysql: bool) -> None:
        self.conn = conn
        self.mysql = mysql
        self.pending: list[tuple[str, str, int]] = []

    def _cursor(self) -> Any:
        return self.conn.cursor()

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query."""
        with self._cursor() as cur:
            cur.execute(query, tuple(params))
            return list(cur.fetchall())

    def one(self, query: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        with self._cursor() as cur:
            cur.execute(query, tuple(params))
            return cur.fetchone()

    def scalar(self, query: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row."""
        row = self.one(query, params)
        return row[0] if row else None

    def change(self, op: str, table: str, query: str, params: Sequence[Any] = ()) -> int:
        """Run a DML statement and remember how many rows it really changed."""
        with self._cursor() as cur:
            cur.execute(query, tuple(params))
            count = max(cur.rowcount, 0)
            self.pending.append((table, op, count))
            return count

    def insert_id(self, table: str, query: str, params: Sequence[Any]) -> int:
        """Insert one row and return its generated key (RETURNING on PostgreSQL)."""
        with self._cursor() as cur:
            cur.execute(query, tuple(params))
            self.pending.append((table, "insert", max(cur.rowcount, 0)))
            if self.mysql:
                return int(cur.lastrowid)
            row = cur.fetchone()
            assert row is not None
            return int(row[0])

    def pick(
        self,
        rng: random.Random,
        table: str,
        cols: str,
        order: str,
        where: str = "",
        params: Sequence[Any] = (),
        k: int = 1,
    ) -> list[tuple[Any, ...]]:
        """Up to `k` distinct rows chosen at random, deterministically (ORDER BY + OFFSET)."""
        n = int(self.scalar(f"SELECT count(*) FROM {table} {where}", params) or 0)
        if n == 0:
            return []
        picked = []
        for offset in sorted(rng.sample(range(n), k=min(k, n))):
            row = self.one(
                f"SELECT {cols} FROM {table} {where} ORDER BY {order} LIMIT 1 OFFSET %s",
                (*params, offset),
            )
            if row is not None:
                picked.append(row)
        return picked

    def pick_one(self, rng: random.Random, *args: Any, **kwargs: Any) -> tuple[Any, ...] | None:
        """One row chosen like `pick`, or None when none qualifies."""
        rows = self.pick(rng, *args, **kwargs)
        return rows[0] if rows else None

    def changed(self) -> int:
        """Rows changed so far in this transaction."""
        return sum(c for _t, _o, c in self.pending)


class Clock:
    """Simulated business time: advances a random few hundred ms per transaction."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def tick(self, rng: random.Random) -> datetime:
        """Advance by 1 µs to 2 s and return the new time."""
        self.now += timedelta(microseconds=rng.randint(1, 2_000_000))
        return self.now


Op = Callable[[Tx, random.Random, datetime, int], bool]


class Business:
    """The operations of one demo database; each returns False when it cannot run or fit."""

    mysql = False

    def ops(self) -> list[tuple[Op, int]]:
        """(operation, weight) pairs."""
        raise NotImplementedError

    def fallback(self) -> list[Op]:
        """One-row operations tried in order when the chosen one does not apply."""
        raise NotImplementedError

    def fingerprint(self, tx: Tx) -> str:
        """Row counts and newest timestamp: the starting state the random stream is tied to."""
        raise NotImplementedError

    def latest(self, tx: Tx) -> datetime | None:
        """The newest business timestamp in the database."""
        raise NotImplementedError
