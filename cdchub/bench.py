"""`cdchub bench merge`: throughput of the SCD2 merge alone, on synthetic ChangeEvents.

No Kafka and no decoding: a seeded, legal stream of inserts, updates and deletes over a fixed key
space is cut into batches and applied with `Scd2Engine.apply`, each batch in its own transaction with
its offsets, exactly as `cdchub run` does. It prints figures; it is not a test and asserts nothing.

It never touches what it did not make: each run writes into a schema of its own
(`cdchub_bench_<8 hex digits>`) under a consumer group of its own, and afterwards drops that schema
and deletes its rows from every control table (the control schema too when the run created it).
Each warehouse's `sandbox.py` says where a run may write (`WarehousePlugin.bench_session`): DuckDB
runs in a temporary file; PostgreSQL and Snowflake default to the local stack's warehouse and
fakesnow, and refuse any other warehouse unless the user says `--yes`.
"""

from __future__ import annotations

import datetime as dt
import random
import resource
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal

from sqlglot import exp

from connectors import warehouses
from core.config import HubConfig
from core.model import ChangeEvent, Column, ColumnType, Op, TableId, TableSchema
from merge import client_sql, control, sqltree
from merge.ledger import Checkpoint
from merge.naming import CONTROL_SCHEMA
from merge.scd2 import Scd2Engine
from merge.schema_sync import TableInfo
from merge.session import WarehouseSession
from observability.lagmath import percentile

SCRATCH_PREFIX = "cdchub_bench_"
# How the user allows a run on a warehouse that is neither the local stack's nor an emulator.
CONSENT = (
    "give --yes to benchmark it anyway (the run uses a schema of its own, "
    f"{SCRATCH_PREFIX}<random>, and removes everything it wrote)"
)
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


@dataclass(frozen=True)
class Scratch:
    """What one benchmark run writes: its own schema (the source name), table and consumer group."""

    schema: str

    @classmethod
    def new(cls) -> Scratch:
        """A scratch name no other run, and no user schema, is expected to hold."""
        return cls(f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:8]}")

    @property
    def table(self) -> TableId:
        return TableId(self.schema, "public", "items")

    @property
    def group(self) -> str:
        return self.schema

    @property
    def infos(self) -> dict[TableId, TableInfo]:
        return {self.table: TableInfo("postgres", "bench", "public")}

    def cleanup(self) -> list[exp.Expression]:
        """Statements removing every trace: the schema, and its rows in each control table."""
        by_source = (control.TABLES, control.BATCHES, control.SCHEMAS, control.CHECKS)
        by_group = (control.OFFSETS, control.BATCH_OFFSETS, control.PARKED)
        statements: list[exp.Expression] = [client_sql.drop_schema(self.schema)]
        for name, column, value in (
            *((n, "source", self.schema) for n in by_source),
            *((n, "consumer_group", self.group) for n in by_group),
            (control.COLUMNS, "warehouse_schema", self.schema),
        ):
            where = exp.EQ(this=sqltree.col(column), expression=exp.Literal.string(value))
            statements.append(exp.delete(control.control_table(name), where=where))
        return statements


def synthetic_events(count: int, keys: int, seed: int, table: TableId) -> list[ChangeEvent]:
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
            ChangeEvent(table, op, (key,), before, after, f"{step:012d}", when, f"t{step}", SCHEMA)
        )
    return events


def _open(kind: str, config: HubConfig, yes: bool) -> AbstractContextManager[WarehouseSession]:
    """The warehouse of `kind` the run may write into: each warehouse's sandbox decides."""
    from infrastructure.stack.layout import StackLayout

    local = StackLayout(config).local_warehouse(kind)
    return warehouses.plugin(kind).bench_session(config.warehouse, local, yes=yes, consent=CONSENT)


@contextmanager
def scratch_in(session: WarehouseSession) -> Iterator[Scratch]:
    """A fresh scratch schema in `session`'s warehouse, removed with every trace afterwards."""
    scratch = Scratch.new()
    had_control = session.table_columns(CONTROL_SCHEMA, control.TABLES) is not None
    try:
        yield scratch
    finally:
        if had_control:
            with session.transaction():
                for statement in scratch.cleanup():
                    session.execute(statement)
        else:  # the run created the control schema: it goes too
            session.execute(client_sql.drop_schema(scratch.schema))
            session.execute(client_sql.drop_schema(CONTROL_SCHEMA))


def bench_merge(
    config: HubConfig,
    kind: str,
    *,
    events: int,
    batch: int,
    keys: int,
    seed: int = 7,
    yes: bool = False,
) -> BenchResult:
    """Apply `events` synthetic changes in batches of `batch` and measure the merge.

    Raises:
        ConfigError: the warehouse is not the local stack's (or fakesnow) and `yes` is not given.
    """
    latencies: list[float] = []
    versions = 0
    with _open(kind, config, yes) as session, scratch_in(session) as scratch:
        stream = synthetic_events(events, keys, seed, scratch.table)
        engine = Scd2Engine(session, scratch.group)
        engine.ensure_control()
        for start in range(0, len(stream), batch):
            chunk = stream[start : start + batch]
            began = time.perf_counter()
            result = engine.apply(
                {scratch.table: chunk},
                scratch.infos,
                [Checkpoint(scratch.schema, 0, start + len(chunk))],
            )
            latencies.append(time.perf_counter() - began)
            versions += result.versions
    total = sum(latencies)
    return BenchResult(
        warehouse=kind,
        events=len(stream),
        batch=batch,
        keys=keys,
        batches=len(latencies),
        versions=versions,
        seconds=total,
        events_per_s=len(stream) / total if total else 0.0,
        batch_p50_ms=percentile(latencies, 50) * 1000,
        batch_p95_ms=percentile(latencies, 95) * 1000,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
