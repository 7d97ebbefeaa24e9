"""Transaction-consistent mode on the real stack: the warehouse never shows half a source transaction.

Each source transaction below stamps one marker on 30 rows of two tables. The consumer runs with batches
of 25 records, so every transaction is cut across several Kafka polls. After every committed batch the
warehouse must show one marker on all 60 rows (or none yet). The same check with the mode switched off
must catch a half-applied transaction: that shows the check can fail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cdc_consumers.runner import Runner
from connectors.warehouses import open_session
from core.config import HubConfig
from core.results import BatchResult
from dbschemas.demo_sources import source_connection
from tests.integration.conftest import Stack
from tests.integration.helpers import failures, replicate_until_verified, verify, with_warehouse

pytestmark = pytest.mark.integration

ROWS = 30
TRANSACTIONS = 6
# (source, table A, its key, table B, its key, text column stamped in both)
TARGETS = {
    "shop": ("orders", "order_id", "customers", "customer_id", ("notes", "phone")),
    "inventory": ("suppliers", "supplier_id", "shipments", "shipment_id", ("notes", "notes")),
}


def stamp_transactions(stack: Stack) -> dict[str, tuple[list[Any], list[Any]]]:
    """Run the marked transactions on both sources; return the keys stamped per source."""
    stamped = {}
    for source in stack.config.sources:
        table_a, key_a, table_b, key_b, (col_a, col_b) = TARGETS[source.name]
        conn = source_connection(stack.layout, source)
        try:
            cur = conn.cursor()
            cur.execute(f"SELECT {key_a} FROM {table_a} ORDER BY {key_a} LIMIT {ROWS}")
            keys_a = [r[0] for r in cur.fetchall()]
            cur.execute(f"SELECT {key_b} FROM {table_b} ORDER BY {key_b} LIMIT {ROWS}")
            keys_b = [r[0] for r in cur.fetchall()]
            for i in range(TRANSACTIONS):
                marker = f"tx-{source.name}-{i}"
                for table, key, column, keys in (
                    (table_a, key_a, col_a, keys_a),
                    (table_b, key_b, col_b, keys_b),
                ):
                    for k in keys:
                        cur.execute(
                            f"UPDATE {table} SET {column} = %s WHERE {key} = %s", (marker, k)
                        )
                conn.commit()
        finally:
            conn.close()
        stamped[source.name] = (keys_a, keys_b)
    return stamped


def markers_seen(
    query: Callable[[str], list[tuple[Any, ...]]],
    stamped: dict[str, tuple[list[Any], list[Any]]],
) -> dict[str, set[str]]:
    """Per source, the distinct markers the stamped warehouse rows show now."""
    seen: dict[str, set] = {}
    for source, (keys_a, keys_b) in stamped.items():
        table_a, key_a, table_b, key_b, (col_a, col_b) = TARGETS[source]
        values: list[Any] = []
        for table, key, column, keys in (
            (table_a, key_a, col_a, keys_a),
            (table_b, key_b, col_b, keys_b),
        ):
            try:
                rows = query(f'SELECT "{key}", "{column}" FROM "{source}"."{table}"')
            except duckdb.CatalogException:
                rows = []  # the table has not arrived yet
            by_key = dict(rows)
            values.extend(by_key.get(k) for k in keys)
        markers = {v for v in values if isinstance(v, str) and v.startswith("tx-")}
        if markers and len(markers) == 1 and any(v not in markers for v in values):
            markers.add("<unstamped>")  # some rows already show the marker, others none
        seen[source] = markers
    return seen


def replay(config: HubConfig, stamped: dict[str, tuple[list[Any], list[Any]]]) -> list[dict]:
    """Consume everything into a fresh warehouse; return every torn state seen after a batch."""
    torn: list[dict] = []
    session = open_session(config)

    def check(_batch: BatchResult) -> None:
        seen = markers_seen(session.query, stamped)
        torn.extend({s: m} for s, m in seen.items() if len(m) > 1)

    try:
        runner = Runner(config, session, progress=lambda _m: None)
        result = runner.run(until_idle=4, max_seconds=300, handle_signals=False, on_batch=check)
        assert result.forced_releases == 0, "transactions applied without consistency"
    finally:
        session.close()
    return torn


def small_batches(config: HubConfig, tmp: Path, name: str, consistent: bool) -> HubConfig:
    config = with_warehouse(config, tmp / f"{name}.duckdb", f"it-{name}")
    return config.model_copy(
        update={
            "kafka": config.kafka.model_copy(update={"batch_max_events": 25}),
            "sources": [
                s.model_copy(update={"transaction_consistent": consistent}) for s in config.sources
            ],
        }
    )


def test_no_batch_shows_half_a_source_transaction(stack: Stack, tmp_path: Path) -> None:
    # Debezium's initial snapshot runs in the background; changes made while it runs are streamed
    # after it, and the check below wants ordinary streamed transactions.
    assert replicate_until_verified(stack.config)["ok"]
    stamped = stamp_transactions(stack)
    # Wait until Debezium has delivered them all: the replays below stop once caught up and idle.
    assert replicate_until_verified(stack.config)["ok"]
    config = small_batches(stack.config, tmp_path, "txc", consistent=True)
    torn = replay(config, stamped)
    assert torn == []
    conn = duckdb.connect(str(config.warehouse.path), read_only=True)
    try:
        final = markers_seen(lambda sql: conn.execute(sql).fetchall(), stamped)
    finally:
        conn.close()
    assert final == {s: {f"tx-{s}-{TRANSACTIONS - 1}"} for s in stamped}
    report = verify(config)
    assert report["ok"], failures(report)

    # The same replay with the mode off shows torn states: the check above can fail.
    loose = small_batches(stack.config, tmp_path, "loose", consistent=False)
    assert replay(loose, stamped) != []
