"""The PostgreSQL warehouse on the real stack: its COPY staging and the whole pipeline into it.

The SCD2 property, exactly-once, TOAST, type-matrix and schema-evolution cases run on it from the
behaviour suite (tests/integration/test_behaviour_postgres.py).

The warehouse database is the one `stack up` creates on the stack's PostgreSQL (`cdchub_warehouse`,
owned by the `cdchub_warehouse` user). Nothing is mocked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlglot import exp

from connectors.warehouses.postgres.client import PostgresSession
from core.config import HubConfig, PostgresWarehouse
from merge import client_sql, ddl, sqltree
from merge.naming import CONTROL_SCHEMA
from tests.integration.conftest import Stack
from tests.integration.helpers import failures, replicate_until_verified
from tests.integration.pg_kinds import KINDS, expected
from tests.scd2_cases import TABLE

pytestmark = pytest.mark.integration


def warehouse_config(stack: Stack) -> PostgresWarehouse:
    """The stack's warehouse database, as a user would configure it."""
    return stack.layout.pg_warehouse_config()


def _drop_schemas(session: PostgresSession, *names: str) -> None:
    for name in names:
        session.execute(client_sql.drop_schema(name))


@pytest.fixture
def pg_session(stack: Stack) -> Iterator[PostgresSession]:
    """A session on the warehouse database, cleared of the test table and the control schema."""
    session = PostgresSession(warehouse_config(stack))
    try:
        _drop_schemas(session, TABLE.source, CONTROL_SCHEMA)
        yield session
    finally:
        session.close()


def test_pipeline_into_postgres_warehouse_verifies(stack: Stack) -> None:
    config: HubConfig = stack.config.model_copy(
        update={
            "warehouse": warehouse_config(stack),
            "kafka": stack.config.kafka.model_copy(update={"group_id": "cdchub-it-postgres"}),
        }
    )
    session = PostgresSession(config.warehouse)  # type: ignore[arg-type]
    try:
        _drop_schemas(session, "shop", "inventory", CONTROL_SCHEMA)
    finally:
        session.close()
    report = replicate_until_verified(config)
    assert report["ok"], failures(report)
    assert {t["table"] for t in report["tables"]} >= {"public.orders", "inventory.shipments"}


def test_postgres_stage_keeps_every_kind_exactly(pg_session: PostgresSession) -> None:
    """COPY staging round-trips each kind: NaN and 1000-digit numerics, bytes, arrays, JSON, NULLs."""
    columns = [(name, ctype) for name, ctype, _ in KINDS]
    with pg_session.transaction():
        pg_session.execute(ddl.drop_table(sqltree.table("_cdc_kinds")))
        values = tuple(v for _, _, v in KINDS)
        pg_session.load_stage("_cdc_kinds", columns, [values, tuple(None for _ in KINDS)])
        rows = pg_session.query(
            exp.select(*(sqltree.col(n) for n, _ in columns)).from_(sqltree.table("_cdc_kinds"))
        )
    full, empty = (rows[0], rows[1]) if rows[0][0] is not None else (rows[1], rows[0])
    assert empty == tuple(None for _ in KINDS)
    for (name, _, value), got in zip(KINDS, full, strict=True):
        want = expected(name, value)
        if name == "doc":
            assert json.loads(got) == json.loads(want)
        elif isinstance(want, float | Decimal) and want != want:  # NaN
            assert got != got, name
        else:
            assert got == want, name
