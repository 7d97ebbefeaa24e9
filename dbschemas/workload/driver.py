"""The workload driver: connects to the demo sources, runs business transactions at random among them
at the asked rate until the asked size, and counts what each source committed.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
import pymysql

from core.config import SourceConfig
from core.errors import ConfigError, StackError
from dbschemas import Progress
from dbschemas import fakedata as fd
from dbschemas.demo_sources import demo_name, is_local_demo_source, source_connection
from dbschemas.workload.inventory import Inventory
from dbschemas.workload.shop import Shop
from dbschemas.workload.tx import Business, Clock, Tx
from infrastructure.stack.layout import StackLayout

PROGRESS_EVERY_S = 2.0
OPS = ("insert", "update", "delete")


@dataclass
class SourceStats:
    """Row changes and transactions committed on one source."""

    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    transactions: int = 0
    # table -> {"insert"|"update"|"delete": rows}
    tables: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        """All committed row changes."""
        return self.inserts + self.updates + self.deletes

    def add(self, table: str, op: str, rows: int) -> None:
        """Record `rows` committed changes of kind `op` on `table`."""
        setattr(self, f"{op}s", getattr(self, f"{op}s") + rows)
        per_table = self.tables.setdefault(table, dict.fromkeys(OPS, 0))
        per_table[op] += rows


@dataclass
class WorkloadResult:
    """What a workload run committed, per source, and how long it took."""

    sources: dict[str, SourceStats]
    elapsed: float
    interrupted: bool = False

    @property
    def transactions(self) -> int:
        """Committed transactions over all sources."""
        return sum(s.transactions for s in self.sources.values())

    @property
    def changes(self) -> int:
        """Committed row changes over all sources."""
        return sum(s.changes for s in self.sources.values())

    @property
    def rate(self) -> float:
        """Achieved row changes per second."""
        return self.changes / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> str:
        """One line per source plus a total, for the CLI."""
        lines = [
            f"{name}: {s.changes} changes ({s.inserts} ins, {s.updates} upd, {s.deletes} del) "
            f"in {s.transactions} tx"
            for name, s in self.sources.items()
        ]
        lines.append(
            f"total: {self.changes} changes in {self.transactions} tx, "
            f"{self.elapsed:.1f}s, {self.rate:.0f}/s"
            + (" (interrupted)" if self.interrupted else "")
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


@dataclass
class _Target:
    source: SourceConfig
    business: Business
    conn: Any
    stats: SourceStats


def _connect_targets(layout: StackLayout, sources: list[SourceConfig]) -> list[_Target]:
    targets: list[_Target] = []
    try:
        for source in sources:
            name = demo_name(source)
            if name is None or not is_local_demo_source(layout, source):
                continue
            business: Business = Shop() if name == "shop" else Inventory()
            conn = source_connection(layout, source)
            targets.append(_Target(source, business, conn, SourceStats()))
    except BaseException:
        for t in targets:
            t.conn.close()
        raise
    return targets


def _run_tx(target: _Target, rng: random.Random, clock: Clock, budget: int) -> Tx:
    """Run one business transaction on `target` and commit it."""
    tx = Tx(target.conn, mysql=target.business.mysql)
    now = clock.tick(rng)
    ops = target.business.ops()
    op = rng.choices([o for o, _w in ops], weights=[w for _o, w in ops])[0]
    try:
        done = op(tx, rng, now, budget)
        for fallback in target.business.fallback():
            if done:
                break
            # A failed op may have read but never writes, so the transaction is still clean.
            done = fallback(tx, rng, now, budget)
        target.conn.commit()
    except (psycopg.Error, pymysql.err.MySQLError) as exc:
        target.conn.rollback()
        raise StackError(
            f"workload transaction failed: {exc}", source=target.source.name, op=op.__name__
        ) from exc
    except BaseException:
        target.conn.rollback()
        raise
    return tx


def run_workload(
    layout: StackLayout,
    sources: list[SourceConfig],
    *,
    rate: float | None,
    duration: float | None,
    events: int | None,
    seed: int,
    progress: Progress = print,
) -> WorkloadResult:
    """Change the demo databases of `sources` with a deterministic business workload.

    Args:
        rate: target row changes per second (sleeps to pace); None runs flat out.
        duration: stop after this many seconds.
        events: stop after exactly this many committed row changes.
        seed: the random seed; same seed and same starting data give the same final data.

    Stops at whichever of `events` / `duration` comes first; Ctrl-C stops early and returns what
    was committed (with `interrupted=True`).

    Raises:
        ConfigError: neither events nor duration given, a bad rate, or no demo source to change.
        StackError: a database is unreachable or a transaction fails.
    """
    if events is None and duration is None:
        raise ConfigError("give the workload a size: events and/or duration")
    if rate is not None and rate <= 0:
        raise ConfigError("workload rate must be positive", rate=rate)
    if (events is not None and events < 0) or (duration is not None and duration < 0):
        raise ConfigError("workload events and duration must not be negative")
    targets = _connect_targets(layout, sources)
    if not targets:
        raise ConfigError(
            "no demo source to run the workload against (needs a postgres source on database "
            "'shop' or a mariadb source on database 'inventory' on the local stack)"
        )
    result = WorkloadResult({t.source.name: t.stats for t in targets}, 0.0)
    try:
        rng, clock = _start_state(targets, seed)
        _drive(targets, rng, clock, result, rate, duration, events, progress)
    finally:
        for t in targets:
            t.conn.close()
    progress(
        f"workload: done, {result.changes} changes in {result.transactions} tx, "
        f"{result.elapsed:.1f}s, {result.rate:.0f}/s"
    )
    return result


def _start_state(targets: list[_Target], seed: int) -> tuple[random.Random, Clock]:
    """Seed the random stream with the starting data and start the clock after its newest row."""
    fingerprints, latest = [], []
    for t in targets:
        tx = Tx(t.conn, mysql=t.business.mysql)
        fingerprints.append(t.business.fingerprint(tx))
        stamp = t.business.latest(tx)
        if stamp is not None:
            latest.append(stamp)
        t.conn.rollback()  # end the read-only snapshot
    start = max(latest, default=fd.EPOCH) + timedelta(seconds=1)
    # A str seed is hashed with SHA-512 by `random`, so this is stable across processes.
    return random.Random(f"{seed}|{'|'.join(fingerprints)}"), Clock(start)


def _drive(
    targets: list[_Target],
    rng: random.Random,
    clock: Clock,
    result: WorkloadResult,
    rate: float | None,
    duration: float | None,
    events: int | None,
    progress: Progress,
) -> None:
    started = time.monotonic()
    last_report = started
    done = 0
    try:
        while True:
            elapsed = time.monotonic() - started
            if (events is not None and done >= events) or (
                duration is not None and elapsed >= duration
            ):
                break
            budget = events - done if events is not None else 1_000_000
            target = rng.choice(targets)
            tx = _run_tx(target, rng, clock, budget)
            for table, op, count in tx.pending:
                target.stats.add(table, op, count)
            target.stats.transactions += 1
            done += tx.changed()
            now = time.monotonic()
            if rate is not None:
                # Pace on the cumulative count, so short stalls are caught up smoothly.
                ahead = done / rate - (now - started)
                if duration is not None:
                    ahead = min(ahead, duration - (now - started))
                if ahead > 0:
                    time.sleep(ahead)
                    now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                result.elapsed = now - started
                total = f"/{events}" if events is not None else ""
                progress(
                    f"workload: {done}{total} changes, {result.transactions} tx, "
                    f"{done / result.elapsed:.0f}/s"
                )
    except KeyboardInterrupt:
        result.interrupted = True
        progress("workload: interrupted")
    result.elapsed = time.monotonic() - started
