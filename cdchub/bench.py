"""`cdchub bench merge`: throughput of the SCD2 merge alone, on synthetic ChangeEvents.

No Kafka and no decoding: a seeded, legal stream of inserts, updates and deletes over a fixed key
space is cut into batches and applied with `Scd2Engine.apply`, each batch in its own transaction with
its offsets, exactly as `cdchub run` does. It prints figures; it is not a test and asserts nothing.
"""

from __future__ import annotations

import datetime as dt
import random
import resource
import statistics
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory

from core.config import HubConfig, PostgresWarehouse, SnowflakeWarehouse
from core.model import ChangeEvent, Column, ColumnType, Op, TableId, TableSchema
from merge import client_sql
from merge.scd2 import Checkpoint, Scd2Engine, TableInfo
from merge.session import WarehouseSession

TABLE = TableId("bench", "public", "items")
SCHEMA = TableSchema(
    (
        Column("id", ColumnType("int64"), False),
        Column("name", ColumnType("string")),
        Column("qty", ColumnType("int64")),
        Column("price", ColumnType("decimal", precision=12, scale=2)),
        Column("updated_at", ColumnType("timestamptz")),
    ),
    ("id",),
)
INFO = {TABLE: TableInfo("postgres", "bench", "public")}
GROUP = "cdchub-bench"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass
class BenchResult:
    """What `bench merge` measured."""

    warehouse: str
    events: int
    batch: int
    keys: int
    batches: int
    versions: int
    seconds: float
    events_per_s: float
    batch_p50_ms: float
    batch_p95_ms: float
    peak_rss_mb: float

    def describe(self) -> str:
        """The figures as a few readable lines."""
        return (
            f"bench merge on {self.warehouse}: {self.events} events in {self.batches} batches of "
            f"{self.batch} over {self.keys} keys -> {self.versions} versions\n"
            f"  throughput   {self.events_per_s:,.0f} events/s ({self.seconds:.2f} s merging)\n"
            f"  batch        p50 {self.batch_p50_ms:.1f} ms, p95 {self.batch_p95_ms:.1f} ms\n"
            f"  peak RSS     {self.peak_rss_mb:.0f} MB (this process)"
        )

    def to_json(self) -> dict[str, object]:
        """The figures as a JSON object."""
        return asdict(self)


def synthetic_events(count: int, keys: int, seed: int) -> list[ChangeEvent]:
    """A legal stream: a key absent is inserted; a live key is updated (75%) or deleted (25%)."""
    rng = random.Random(seed)
    live: set[int] = set()
    events = []
    for step in range(count):
        key = rng.randrange(keys)
        when = T0 + dt.timedelta(milliseconds=step)
        row = {
            "id": key,
            "name": f"item-{rng.randrange(1000)}",
            "qty": rng.randrange(100),
            "price": Decimal(rng.randrange(100_000)).scaleb(-2),
            "updated_at": when,
        }
        if key not in live:
            live.add(key)
            op, before, after = Op.CREATE, None, row
        elif rng.random() < 0.75:
            op, before, after = Op.UPDATE, None, row
        else:
            live.discard(key)
            op, before, after = Op.DELETE, {"id": key}, None
        events.append(
            ChangeEvent(TABLE, op, (key,), before, after, f"{step:012d}", when, f"t{step}", SCHEMA)
        )
    return events


@contextmanager
def _duckdb() -> Iterator[WarehouseSession]:
    from connectors.warehouses.duckdb_client import DuckDBSession

    with TemporaryDirectory(prefix="cdchub-bench-") as tmp:
        session = DuckDBSession(Path(tmp) / "warehouse.duckdb")
        try:
            yield session
        finally:
            session.close()


@contextmanager
def _postgres(config: HubConfig) -> Iterator[WarehouseSession]:
    from connectors.warehouses.postgres_client import PostgresSession
    from infrastructure.stack.layout import StackLayout

    warehouse = config.warehouse
    if not isinstance(warehouse, PostgresWarehouse):
        # Not configured: the local stack's warehouse database (`cdchub stack up` creates it).
        warehouse = StackLayout(config).pg_warehouse_config()
    session = PostgresSession(warehouse)
    drop = client_sql.drop_schema(TABLE.source)
    try:
        session.execute(drop)
        yield session
        session.execute(drop)
    finally:
        session.close()


@contextmanager
def _snowflake(config: HubConfig) -> Iterator[WarehouseSession]:
    from connectors.warehouses.snowflake_client import SnowflakeSession

    if isinstance(config.warehouse, SnowflakeWarehouse):
        session = SnowflakeSession(config.warehouse)
        try:
            yield session
        finally:
            session.close()
        return
    import fakesnow  # a dev dependency: the emulator, when no Snowflake account is configured

    with fakesnow.patch():
        fake = SnowflakeWarehouse.model_validate(
            {
                "kind": "snowflake",
                "account": "fakesnow",
                "user": "bench",
                "password": "-",
                "database": "cdchub_bench",
            }
        )
        session = SnowflakeSession(fake)
        try:
            yield session
        finally:
            session.close()


def _open(kind: str, config: HubConfig) -> AbstractContextManager[WarehouseSession]:
    if kind == "postgres":
        return _postgres(config)
    if kind == "snowflake":
        return _snowflake(config)
    return _duckdb()


def bench_merge(
    config: HubConfig, kind: str, *, events: int, batch: int, keys: int, seed: int = 7
) -> BenchResult:
    """Apply `events` synthetic changes in batches of `batch` and measure the merge."""
    stream = synthetic_events(events, keys, seed)
    latencies: list[float] = []
    versions = 0
    with _open(kind, config) as session:
        engine = Scd2Engine(session, GROUP)
        engine.ensure_control()
        for start in range(0, len(stream), batch):
            chunk = stream[start : start + batch]
            began = time.perf_counter()
            result = engine.apply(
                {TABLE: chunk}, INFO, [Checkpoint("bench", 0, start + len(chunk))]
            )
            latencies.append(time.perf_counter() - began)
            versions += result.versions
    total = sum(latencies)
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else latencies[0]
    return BenchResult(
        warehouse=kind,
        events=len(stream),
        batch=batch,
        keys=keys,
        batches=len(latencies),
        versions=versions,
        seconds=total,
        events_per_s=len(stream) / total if total else 0.0,
        batch_p50_ms=statistics.median(latencies) * 1000,
        batch_p95_ms=p95 * 1000,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
