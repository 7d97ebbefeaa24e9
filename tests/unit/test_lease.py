"""The run lease: one consumer per consumer group, taken over only from a holder that is gone."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from cdc_consumers.runner import Runner
from core.config import DuckDBWarehouse, HubConfig, SourceConfig
from merge import control, plan, sqltree
from merge.runstate import (
    LEASE,
    LEASE_COLUMNS,
    LeaseHeld,
    LeaseLost,
    RunLease,
    ensure_tables,
    holders,
)
from merge.session import WarehouseSession
from tests.unit.warehouses import duckdb_session, snowflake_session

SESSIONS: list[Callable[[Path], AbstractContextManager[WarehouseSession]]] = [
    duckdb_session,
    snowflake_session,
]


@pytest.fixture(params=SESSIONS, ids=["duckdb", "snowflake"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WarehouseSession]:
    with request.param(tmp_path / "wh") as opened:
        yield opened


def plant(session: WarehouseSession, host: str, pid: int, age_s: float = 0.0) -> None:
    """A lease row as another process would have written it."""
    ensure_tables(session)
    beat = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age_s)
    with session.transaction():
        session.executemany(
            sqltree.insert_rows(control.control_table(LEASE), [c for c, _ in LEASE_COLUMNS]),
            [("g", "other", host, pid, beat, beat)],
        )


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_holder_is_refused_and_named(session: WarehouseSession) -> None:
    first = RunLease.acquire(session, "g")
    with pytest.raises(LeaseHeld) as refused:
        RunLease.acquire(session, "g")
    message = str(refused.value)
    assert f"pid {os.getpid()}" in message
    assert first.holder.host in message
    assert "started" in message
    RunLease.acquire(session, "other-group").release()  # another group is independent
    first.release()
    assert holders(session, "g") == []
    RunLease.acquire(session, "g").release()


def test_a_dead_holder_on_this_host_is_taken_over(session: WarehouseSession) -> None:
    import socket

    plant(session, socket.gethostname(), dead_pid())
    lease = RunLease.acquire(session, "g")
    assert [h.holder_id for h in holders(session, "g")] == [lease.holder.holder_id]
    lease.renew(force=True)
    lease.release()


def test_a_live_holder_on_this_host_is_not_taken_over_however_old(
    session: WarehouseSession,
) -> None:
    import socket

    plant(session, socket.gethostname(), os.getppid(), age_s=10_000)
    with pytest.raises(LeaseHeld, match=f"pid {os.getppid()}"):
        RunLease.acquire(session, "g")


def test_another_hosts_lease_expires(session: WarehouseSession) -> None:
    plant(session, "elsewhere.example", 1)
    with pytest.raises(LeaseHeld, match=r"host elsewhere\.example pid 1"):
        RunLease.acquire(session, "g")
    with session.transaction():
        session.execute(plan.empty_table(control.control_table(LEASE)))
    plant(session, "elsewhere.example", 1, age_s=3600)
    RunLease.acquire(session, "g").release()


def test_a_lease_taken_over_is_lost_at_the_next_renewal(session: WarehouseSession) -> None:
    lease = RunLease.acquire(session, "g")
    with session.transaction():
        session.execute(plan.empty_table(control.control_table(LEASE)))
    plant(session, "elsewhere.example", 1)
    with pytest.raises(LeaseLost, match=r"elsewhere\.example"):
        lease.renew(force=True)


def test_the_runner_refuses_to_start_while_another_run_holds_the_lease(tmp_path: Path) -> None:
    """No Kafka needed: the lease is taken before the consumer is created."""
    import socket

    from connectors.warehouses.duckdb.client import DuckDBSession

    config = HubConfig(
        sources=[
            SourceConfig(
                name="shop", kind="postgres", port=1, database="shop", user="u", password="p"
            )
        ],
        kafka={"bootstrap_servers": "127.0.0.1:1"},
        warehouse=DuckDBWarehouse(path=tmp_path / "wh.duckdb"),
    )
    session = DuckDBSession(config.warehouse.path)
    try:
        plant_group = config.kafka.group_id
        ensure_tables(session)
        now = dt.datetime.now(dt.UTC)
        with session.transaction():
            session.executemany(
                sqltree.insert_rows(control.control_table(LEASE), [c for c, _ in LEASE_COLUMNS]),
                [(plant_group, "x", socket.gethostname(), os.getppid(), now, now)],
            )
        with pytest.raises(LeaseHeld, match=f"pid {os.getppid()}"):
            Runner(config, session, progress=lambda _m: None).run(
                max_seconds=1, handle_signals=False
            )
    finally:
        session.close()
