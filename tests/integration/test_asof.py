"""As-of correctness against the source itself: for instants T between workload bursts, the history
queried as of T (`cdchub asof`'s query) returns exactly the rows each source table held at T, on the
DuckDB and on the PostgreSQL warehouse.

The oracle is independent of the merge: the test reads every source table at T while the workload is
paused. MariaDB commit times have 1 s resolution, so the next burst starts only after the second that
holds T is over; no change committed after T can then carry a commit time at or before T.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Any

import pytest

from connectors.sources import connect, read_table
from connectors.warehouses import open_session
from connectors.warehouses.postgres.client import PostgresSession
from core.config import HubConfig
from dbschemas.workload import run_workload
from merge import client_sql
from merge.naming import CONTROL_SCHEMA
from ops.catalog import replicated_tables, warehouse_types
from ops.history import rows_as_of
from ops.verify import diff_rows
from tests.integration.conftest import Stack
from tests.integration.helpers import replicate_until_verified, run_until_idle
from tests.integration.test_postgres_warehouse import warehouse_config

pytestmark = pytest.mark.integration

BURSTS = 3


def warehouse(stack: Stack, kind: str) -> HubConfig:
    """The stack's config on a DuckDB file or on the stack's PostgreSQL warehouse database (emptied)."""
    if kind == "duckdb":
        return stack.config
    config = stack.config.model_copy(
        update={
            "warehouse": warehouse_config(stack),
            "kafka": stack.config.kafka.model_copy(update={"group_id": "cdchub-it-asof-pg"}),
        }
    )
    session = PostgresSession(config.warehouse)  # type: ignore[arg-type]
    try:
        for schema in ("shop", "inventory", CONTROL_SCHEMA):
            session.execute(client_sql.drop_schema(schema))
    finally:
        session.close()
    return config


def source_state(
    config: HubConfig,
) -> dict[tuple[str, str, str], tuple[list[str], list[tuple[Any, ...]]]]:
    """Every captured source table, read now."""
    state = {}
    session = open_session(config, read_only=True)
    try:
        tables = replicated_tables(session)
    finally:
        session.close()
    for t in tables:
        source = config.source(t.source)
        with connect(source) as conn:
            state[(t.source, t.source_schema, t.source_table)] = read_table(
                conn, source, t.source_schema, t.source_table
            )
    return state


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_history_as_of_any_instant_equals_the_source_then(stack: Stack, kind: str) -> None:
    config = warehouse(stack, kind)
    assert replicate_until_verified(config)["ok"]
    instants: list[tuple[dt.datetime, dict]] = []
    for burst in range(BURSTS):
        run_workload(
            stack.layout,
            list(stack.config.sources),
            rate=None,
            duration=None,
            events=250,
            seed=100 + burst,
            progress=lambda _m: None,
        )
        at = dt.datetime.now(dt.UTC)
        instants.append((at, source_state(config)))
        # Wait out the second holding `at` (MariaDB commit times are whole seconds).
        time.sleep(math.ceil(at.timestamp()) - at.timestamp() + 0.2)
    run_until_idle(config)

    session = open_session(config, read_only=True)
    try:
        tables = replicated_tables(session)
        compared = 0
        for at, state in instants:
            for t in tables:
                src_columns, src_rows = state[(t.source, t.source_schema, t.source_table)]
                columns, rows = rows_as_of(session, t, at)
                assert set(columns) == set(src_columns), t
                positions = [src_columns.index(c) for c in columns]
                expected = [tuple(r[i] for i in positions) for r in src_rows]
                types = warehouse_types(session, t.warehouse_schema, t.current_table)
                diff = diff_rows(columns, expected, rows, t.key_columns, types)
                assert diff.equal, (at, t.warehouse_schema, t.current_table, diff)
                compared += len(expected)
        assert compared > 0
    finally:
        session.close()
