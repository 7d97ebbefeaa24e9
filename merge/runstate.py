"""State a run shares with other processes through the warehouse: its lease and its stopped tables.

**Lease** (`_cdchub.run_lease`): transaction-consistent apply needs one consumer per consumer group.
`cdchub run` (and `demo`, and anything else that drives the runner) takes the group's lease before
it consumes, renews its heartbeat while it runs, and removes it when it ends. A second process finds
the row and refuses, naming the holder (host, pid, start time). A lease is taken over only when its
holder is gone: on the same host, when the pid no longer exists; from another host, when the
heartbeat is older than `LEASE_TTL_S`.

**Stopped tables** (`_cdchub.stopped_tables`): a table stopped by an incompatible column type change
(`SchemaChangeError`) is recorded with the column, old and new types and the command that resumes
it, so `cdchub lag`, the dashboard, the metrics and `cdchub schema accept` see it from any process.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from core.errors import Terminal
from core.model import ColumnType
from merge import control, ddl, sqltree
from merge.naming import CONTROL_SCHEMA
from merge.session import WarehouseSession

log = logging.getLogger(__name__)

LEASE = "run_lease"
STOPS = "stopped_tables"

LEASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("consumer_group", "string"),
    ("holder_id", "string"),
    ("host", "string"),
    ("pid", "int64"),
    ("started_at", "timestamptz"),
    ("heartbeat_at", "timestamptz"),
)
STOPS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("consumer_group", "string"),
    ("source", "string"),
    ("source_schema", "string"),
    ("source_table", "string"),
    ("column_name", "string"),
    ("old_type", "string"),
    ("new_type", "string"),
    ("new_type_json", "string"),
    ("reason", "string"),
    ("stopped_at", "timestamptz"),
)

# A holder on another host that has not renewed for this long is presumed gone. Generous, because a
# run renews between batches and one large batch may take a while.
LEASE_TTL_S = 120.0
RENEW_EVERY_S = 5.0


class LeaseHeld(Terminal):
    """Another live process holds the consumer group's lease."""


class LeaseLost(Terminal):
    """This run's lease was taken over (it failed to renew for longer than the TTL)."""


def ensure_tables(session: WarehouseSession) -> None:
    """Create the lease and stopped-table control tables if missing."""
    with session.transaction():
        session.execute(ddl.create_schema(CONTROL_SCHEMA))
        for name, cols in ((LEASE, LEASE_COLUMNS), (STOPS, STOPS_COLUMNS)):
            session.execute(
                ddl.create_table(
                    control.control_table(name),
                    [(c, ColumnType(k)) for c, k in cols],
                    session.dialect,
                )
            )


def _eq(column: str, value: str | int) -> exp.Expression:
    literal = exp.Literal.number(value) if isinstance(value, int) else exp.Literal.string(value)
    return exp.EQ(this=sqltree.col(column), expression=literal)


def _has(session: WarehouseSession, name: str) -> bool:
    return session.table_columns(CONTROL_SCHEMA, name) is not None


# -- lease ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """Who holds a consumer group's lease."""

    holder_id: str
    host: str
    pid: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime

    def describe(self) -> str:
        """`host pid N, started …, last heartbeat …` for error messages."""
        return (
            f"host {self.host} pid {self.pid}, started {_iso(self.started_at)}, "
            f"last heartbeat {_iso(self.heartbeat_at)}"
        )


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM  # it exists, owned by someone else
    return True


def holder_alive(holder: Holder, now: dt.datetime, ttl_s: float = LEASE_TTL_S) -> bool:
    """Same host: its pid exists. Another host: it renewed within the TTL."""
    if holder.host == socket.gethostname():
        return pid_alive(holder.pid)
    beat = holder.heartbeat_at
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=dt.UTC)
    return (now - beat).total_seconds() < ttl_s


def _select_holders(group: str) -> exp.Expression:
    return (
        exp.select(*(sqltree.col(c) for c, _ in LEASE_COLUMNS[1:]))
        .from_(control.control_table(LEASE))
        .where(_eq("consumer_group", group))
    )


def holders(session: WarehouseSession, group: str) -> list[Holder]:
    """The lease rows of a consumer group (none, or the one holder)."""
    if not _has(session, LEASE):
        return []
    return [
        Holder(str(h), str(host), int(pid), started, beat)
        for h, host, pid, started, beat in session.query(_select_holders(group))
    ]


class RunLease:
    """The lease this process holds on one consumer group (see the module docstring)."""

    def __init__(self, session: WarehouseSession, group: str, holder: Holder) -> None:
        self.session = session
        self.group = group
        self.holder = holder
        self._renewed = time.monotonic()

    @classmethod
    def acquire(
        cls, session: WarehouseSession, group: str, *, ttl_s: float = LEASE_TTL_S
    ) -> RunLease:
        """Take the group's lease, or raise `LeaseHeld` naming the live holder."""
        ensure_tables(session)
        now = dt.datetime.now(dt.UTC)
        me = Holder(uuid.uuid4().hex, socket.gethostname(), os.getpid(), now, now)
        with session.transaction():
            if session.dialect.NAME == "postgres":
                # Two runs starting together must not both see an empty table and both insert.
                lock = exp.var(
                    f"{session.dialect.render(control.control_table(LEASE))} IN EXCLUSIVE MODE"
                )
                session.execute(exp.Command(this="LOCK TABLE", expression=lock))
            for holder in holders(session, group):
                if holder_alive(holder, now, ttl_s):
                    raise LeaseHeld(
                        f"another `cdchub run` is consuming for this config ({holder.describe()}); "
                        "stop it first: one consumer per consumer group keeps the apply "
                        "transaction-consistent",
                        consumer_group=group,
                    )
                log.warning("taking over the lease of a run that is gone (%s)", holder.describe())
            session.execute(
                exp.delete(control.control_table(LEASE), where=_eq("consumer_group", group))
            )
            session.executemany(
                sqltree.insert_rows(control.control_table(LEASE), [c for c, _ in LEASE_COLUMNS]),
                [(group, me.holder_id, me.host, me.pid, me.started_at, me.heartbeat_at)],
            )
        return cls(session, group, me)

    def renew(self, *, force: bool = False) -> None:
        """Refresh the heartbeat (at most every `RENEW_EVERY_S`); raise `LeaseLost` if taken over."""
        if not force and time.monotonic() - self._renewed < RENEW_EVERY_S:
            return
        now = dt.datetime.now(dt.UTC)
        with self.session.transaction():
            current = holders(self.session, self.group)
            if [h.holder_id for h in current] != [self.holder.holder_id]:
                other = current[0].describe() if current else "nobody"
                raise LeaseLost(
                    f"this run's lease was taken over (now held by {other}); stopping",
                    consumer_group=self.group,
                )
            self.session.execute(
                exp.delete(
                    control.control_table(LEASE),
                    where=exp.and_(
                        _eq("consumer_group", self.group),
                        _eq("holder_id", self.holder.holder_id),
                    ),
                )
            )
            h = self.holder
            self.session.executemany(
                sqltree.insert_rows(control.control_table(LEASE), [c for c, _ in LEASE_COLUMNS]),
                [(self.group, h.holder_id, h.host, h.pid, h.started_at, now)],
            )
        self._renewed = time.monotonic()

    def release(self) -> None:
        """Give the lease up (best effort: a crashed process's lease is taken over later)."""
        try:
            with self.session.transaction():
                self.session.execute(
                    exp.delete(
                        control.control_table(LEASE),
                        where=exp.and_(
                            _eq("consumer_group", self.group),
                            _eq("holder_id", self.holder.holder_id),
                        ),
                    )
                )
        except Exception as exc:  # the connection may be gone; the pid check frees it later
            log.warning("could not release the run lease: %s", exc)


# -- stopped tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoppedTable:
    """A table stopped by an incompatible column type change, as recorded in the warehouse."""

    source: str
    source_schema: str
    source_table: str
    column: str
    old_type: str
    new_type: str
    new_type_json: str
    reason: str
    stopped_at: dt.datetime

    @property
    def name(self) -> str:
        """`source.schema.table`, the name `cdchub schema accept` takes."""
        return f"{self.source}.{self.source_schema}.{self.source_table}"

    @property
    def resume(self) -> str:
        """The operator's way out, as a command line (after altering the warehouse column)."""
        return f"cdchub schema accept {self.name}"

    def to_json(self) -> dict[str, Any]:
        """The fields `cdchub lag --json` and the dashboard show."""
        return {
            "column": self.column,
            "old_type": self.old_type,
            "new_type": self.new_type,
            "stopped_at": _iso(self.stopped_at),
            "resume": (
                f"alter column {self.column!r} of the warehouse tables (history and current) to a "
                f"type that holds {self.new_type}, then `{self.resume}` and restart `cdchub run`"
            ),
            "resume_command": self.resume,
        }

    def describe(self) -> str:
        """One line for logs and summaries."""
        return (
            f"{self.name} STOPPED: column {self.column!r} changed type from {self.old_type} to "
            f"{self.new_type}; alter the warehouse column, then `{self.resume}`"
        )


def _table_where(group: str, source: str, schema: str, table: str) -> exp.Expr:
    return exp.and_(
        _eq("consumer_group", group),
        _eq("source", source),
        _eq("source_schema", schema),
        _eq("source_table", table),
    )


def record_stop(session: WarehouseSession, group: str, stop: StoppedTable) -> None:
    """Record (or refresh) a stopped table; its first stop time is kept."""
    ensure_tables(session)
    where = _table_where(group, stop.source, stop.source_schema, stop.source_table)
    with session.transaction():
        rows = session.query(
            exp.select(sqltree.col("stopped_at")).from_(control.control_table(STOPS)).where(where)
        )
        stopped_at = rows[0][0] if rows else stop.stopped_at
        session.execute(exp.delete(control.control_table(STOPS), where=where))
        session.executemany(
            sqltree.insert_rows(control.control_table(STOPS), [c for c, _ in STOPS_COLUMNS]),
            [
                (
                    group,
                    stop.source,
                    stop.source_schema,
                    stop.source_table,
                    stop.column,
                    stop.old_type,
                    stop.new_type,
                    stop.new_type_json,
                    stop.reason,
                    stopped_at,
                )
            ],
        )


def clear_stop(session: WarehouseSession, group: str, source: str, schema: str, table: str) -> None:
    """Forget a stop (the table flows again, or the operator accepted its new schema)."""
    if not _has(session, STOPS):
        return
    with session.transaction():
        session.execute(
            exp.delete(
                control.control_table(STOPS), where=_table_where(group, source, schema, table)
            )
        )


def stopped_tables(session: Any, group: str) -> list[StoppedTable]:
    """Every table of a consumer group stopped by a type change (any session with `query`)."""
    if session.table_columns(CONTROL_SCHEMA, STOPS) is None:
        return []
    query = (
        exp.select(*(sqltree.col(c) for c, _ in STOPS_COLUMNS[1:]))
        .from_(control.control_table(STOPS))
        .where(_eq("consumer_group", group))
        .order_by(sqltree.col("source"), sqltree.col("source_schema"), sqltree.col("source_table"))
    )
    return [StoppedTable(*r) for r in session.query(query)]
