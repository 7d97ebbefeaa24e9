"""A table stopped by an incompatible column type change is stored, shown and resumed only when fixed.

The real run loop (driven through an in-memory change stream, `tests/memory_stream.py`) meets the captured `orders` update, then the same row with
`customer_id` turned from int64 into a string: the table stops and the stop is stored in the
warehouse, where `cdchub lag`'s report and `cdchub schema accept` read it (no Kafka needed).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc_consumers.runner import Runner
from connectors.warehouses.duckdb.client import DuckDBSession
from connectors.warehouses.duckdb.dialect import DuckDBDialect
from connectors.warehouses.postgres.dialect import PostgresDialect
from core.config import HubConfig
from core.errors import ConfigError
from core.model import ColumnType
from merge.runstate import stopped_tables
from ops.lag_report import build_report
from ops.schema_admin import accept_schema, holds
from ops.service import describe_lag
from tests.configs import hub_config
from tests.memory_stream import MemoryStream
from tests.unit.envelope_records import Record, make_record

GROUP = "cdchub"


def feed(runner: Runner, stream: MemoryStream, *records: Record) -> None:
    """Append records to the stream and let the runner's real loop apply them."""
    for record in records:
        stream.append_record(record)
    runner.run(until_idle=0, max_seconds=30, handle_signals=False)


def retyped(record: Record, offset: int) -> Record:
    """The same change with `customer_id` sent as a string (a source `ALTER … TYPE text`)."""
    doc = json.loads(record.value or b"")
    for part in doc["schema"]["fields"]:
        for field in part.get("fields", []):
            if field.get("field") == "customer_id":
                field["type"] = "string"
    for side in ("before", "after"):
        if doc["payload"].get(side):
            doc["payload"][side]["customer_id"] = str(doc["payload"][side]["customer_id"])
    value = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    return dataclasses.replace(record, offset=offset, value=value)


def stop_orders(config: HubConfig, session: DuckDBSession) -> Runner:
    """Run an orders and a customers change, then an orders change retyping `customer_id`:
    orders stops, customers flows. The runner, ready for more."""
    stream = MemoryStream()
    runner = Runner(config, session, progress=lambda _m: None, stream_factory=stream.factory())
    first = make_record("shop.public.orders.u")
    feed(runner, stream, first)
    feed(runner, stream, make_record("shop.public.customers.c"))
    feed(runner, stream, retyped(first, first.offset + 1))
    return runner


@pytest.fixture
def stopped(tmp_path: Path) -> Iterator[tuple[HubConfig, DuckDBSession, Runner]]:
    config = hub_config(tmp_path / "wh.duckdb")
    session = DuckDBSession(config.warehouse.path)
    runner = stop_orders(config, session)
    yield config, session, runner
    session.close()


def test_a_stopped_table_is_stored_and_shown_by_lag(
    stopped: tuple[HubConfig, DuckDBSession, Runner],
) -> None:
    config, session, _ = stopped
    stops = stopped_tables(session, GROUP)
    assert [(s.name, s.column, s.old_type, s.new_type) for s in stops] == [
        ("shop.public.orders", "customer_id", "int64", "string")
    ]
    report = build_report(session, config, window_s=3600, with_kafka=False)
    by_table = {t["table"]: t for t in report["tables"]}
    orders = by_table["public.orders"]
    assert orders["state"] == "stopped"
    assert orders["current_lag_basis"] == "stopped"
    assert orders["stopped"]["column"] == "customer_id"
    assert orders["stopped"]["resume_command"] == "cdchub schema accept shop.public.orders"
    assert by_table["public.customers"]["state"] == "flowing"
    assert report["stopped_tables"] == ["shop.public.orders"]
    text = describe_lag(report)
    assert (
        "STOPPED shop.public.orders: column 'customer_id' changed type from int64 to string" in text
    )
    assert "cdchub schema accept shop.public.orders" in text
    # The held record is stored once, with reason 'held'.
    assert session.query(
        "SELECT count(*) FROM _cdchub.parked_records WHERE reason = 'held'"  # type: ignore[arg-type]
    ) == [(1,)]


def test_accept_refuses_an_unaltered_column_and_a_table_that_is_not_stopped(
    stopped: tuple[HubConfig, DuckDBSession, Runner],
) -> None:
    _, session, _ = stopped
    with pytest.raises(ConfigError, match="is not stopped"):
        accept_schema(session, "shop.public.customers", GROUP)
    with pytest.raises(ConfigError, match=r"shop.orders_history.customer_id is BIGINT"):
        accept_schema(session, "shop.public.orders", GROUP)
    session.conn.execute("ALTER TABLE shop.orders_history ALTER customer_id TYPE VARCHAR")
    with pytest.raises(ConfigError, match=r"shop.orders.customer_id is BIGINT"):
        accept_schema(session, "shop.public.orders", GROUP)
    session.conn.execute("ALTER TABLE shop.orders ALTER customer_id TYPE VARCHAR")
    accept_schema(session, "shop.public.orders", GROUP)
    assert stopped_tables(session, GROUP) == []
    with pytest.raises(ConfigError, match="is not stopped"):
        accept_schema(session, "shop.public.orders", GROUP)


def test_a_resumed_table_applies_its_held_change(tmp_path: Path) -> None:
    config = hub_config(tmp_path / "wh.duckdb")
    session = DuckDBSession(config.warehouse.path)
    try:
        stream = MemoryStream()
        runner = Runner(config, session, progress=lambda _m: None, stream_factory=stream.factory())
        first = make_record("shop.public.orders.u")
        feed(runner, stream, first)
        feed(runner, stream, retyped(first, first.offset + 1))
        # The runner kept only the coordinates of what it decoded; the record it holds for the
        # stopped table was read again from the stream, whole (its bytes are what is stored).
        assert stream.fetched == [("shop.public.orders", 0, first.offset + 1)]
        for name in ("orders", "orders_history"):
            session.conn.execute(f"ALTER TABLE shop.{name} ALTER customer_id TYPE VARCHAR")
        accept_schema(session, "shop.orders", GROUP)
        restarted = Runner(
            config, session, progress=lambda _m: None, stream_factory=stream.factory()
        )
        restarted.run(until_idle=0, max_seconds=30, handle_signals=False)
        assert session.conn.execute("SELECT customer_id FROM shop.orders").fetchall() == [("48",)]
        assert session.conn.execute("SELECT count(*) FROM _cdchub.parked_records").fetchall() == [
            (0,)
        ]
    finally:
        session.close()


@pytest.mark.parametrize(
    ("dialect", "warehouse_type", "new", "ok"),
    [
        (DuckDBDialect(), "INTEGER", ColumnType("int32"), True),
        (DuckDBDialect(), "BIGINT", ColumnType("int32"), True),
        (DuckDBDialect(), "VARCHAR", ColumnType("int32"), False),  # the unaltered text column
        (DuckDBDialect(), "INTEGER", ColumnType("int64"), False),
        (DuckDBDialect(), "VARCHAR", ColumnType("string"), True),
        (PostgresDialect(), "integer", ColumnType("int32"), True),
        (PostgresDialect(), "text", ColumnType("int32"), False),
        (PostgresDialect(), "bigint", ColumnType("int16"), True),
        (PostgresDialect(), "character varying", ColumnType("string"), True),
    ],
)
def test_holds(dialect: object, warehouse_type: str, new: ColumnType, ok: bool) -> None:
    assert holds(dialect, warehouse_type, new) is ok  # type: ignore[arg-type]
