"""The SCD Type 2 engine: applies batches of `ChangeEvent`s to current and history tables.

A batch (events of several tables plus the stream checkpoints they end at) is applied in ONE warehouse
transaction: every table's merge and the checkpoints commit together or not at all. That, with
`plan.remove_applied`, gives an exactly-once effect: a crash before commit re-delivers the batch, whose
changes are then applied once; a crash after commit resumes from the stored checkpoints.

The rules (documented in docs/scd2.md):
- versions of a key are ordered by `_cdc_source_pos`; a version is identified by (key, position);
- `_cdc_valid_to` of a version is the next version's `_cdc_valid_from`; the last one is current;
- a delete is a version with `_cdc_is_deleted` true carrying the values it closes;
- a truncate closes every live key with a deleted version (`_cdc_op = 't'`);
- the current table holds, per key, the current version when it is not deleted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from core.errors import (
    CdcHubError,
    MergeError,
    SchemaChangeError,
    TableApplyError,
    UnrepresentableValue,
)
from core.failures import first_line, is_retryable, retrying
from core.model import ChangeEvent, ColumnType, Op, StreamRecord, TableId, TableSchema
from core.results import BatchResult, TableResult
from merge import dead_letters, plan
from merge.batch_plan import BatchPlan, SegmentSpec, StepKind, plan_table_batch
from merge.dead_letters import DeadLetter
from merge.evolution import Change, evolve
from merge.naming import NameBook, TableNames, check_column_names
from merge.observer import ApplyObserver, NullObserver
from merge.session import WarehouseSession
from observability.lagmath import percentile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """The next position to read from one stream partition (a Kafka topic partition)."""

    stream: str
    partition: int
    next_offset: int


# Why a record sits in `_cdchub.parked_records`. Only records of a table stopped by an incompatible
# schema change are stored ("held"); "transaction" rows were written by versions that parked incomplete
# transactions in the warehouse and are migrated back to Kafka offsets (`migrate_transaction_parking`).
PARKED_FOR_TRANSACTION = "transaction"
HELD_FOR_SCHEMA = "held"


@dataclass(frozen=True)
class ForcedReleaseRow:
    """A transaction applied without transaction consistency (`_cdchub.forced_releases`)."""

    source: str
    tx_id: str
    arrived: int
    expected: int | None
    reason: str


@dataclass
class ParkedChanges:
    """Consumer state written in the batch's transaction with the checkpoints.

    `held` belong to a stopped table (an incompatible schema change, or a dead letter under the
    `halt` policy) and wait for the operator; `removed` are held records that this batch applied;
    `forced` are transactions released incomplete, recorded for `cdchub lag` and the dashboard;
    `dead` are new dead letters (`merge.dead_letters`), `resolved` the ids of retried ones applied.
    """

    held: list[StreamRecord] = field(default_factory=list)
    removed: list[StreamRecord] = field(default_factory=list)
    forced: list[ForcedReleaseRow] = field(default_factory=list)
    # Dead letters to store, and letters whose retried event this batch applied.
    dead: list[DeadLetter] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TableInfo:
    """What the engine needs to know about a source table besides its events."""

    source_kind: str
    source_database: str
    default_namespace: str


class Scd2Engine:
    """Applies batches to one warehouse session, creating and widening tables as sources evolve."""

    def __init__(
        self,
        session: WarehouseSession,
        consumer_group: str,
        observer: ApplyObserver | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.session = session
        # Told when a table gets a name other than its natural one (a clash or a long name).
        self.notify = notify or log.warning
        self._book: NameBook | None = None
        self.observer: ApplyObserver = observer or NullObserver()
        self.dialect = session.dialect
        self.consumer_group = consumer_group
        self._targets: dict[TableId, plan.MergeTarget] = {}
        # (table, schema) pairs already checked against the warehouse columns.
        self._fitted: set[tuple[TableId, TableSchema]] = set()
        self._scratch_ready: set[plan.MergeTarget] = set()
        self._control_ready = False

    # -- setup ----------------------------------------------------------------------------------

    def ensure_control(self) -> None:
        """Create the control schema and tables once per session."""
        if self._control_ready:
            return
        with self.session.transaction():
            for statement in plan.control_ddl(self.dialect):
                self.session.execute(statement)
        dead_letters.ensure_table(self.session)
        self._control_ready = True

    def names(self, table: TableId, info: TableInfo) -> TableNames:
        """The warehouse names of a source table: recorded in `_cdchub.tables`, or new ones that no
        other source table holds and the warehouse can spell (see `merge.naming`)."""
        if self._book is None:
            self.ensure_control()
            recorded = {
                TableId(source, namespace, name): TableNames(schema, current, history)
                for source, namespace, name, schema, current, history in self.session.query(
                    plan.select_registered()
                )
            }
            self._book = NameBook.of(
                self.dialect.fold, self.dialect.MAX_IDENTIFIER_LENGTH, recorded
            )
        names, why = self._book.resolve(table, info.default_namespace)
        if why is not None:
            self.notify(why)
        return names

    def stored_checkpoints(self) -> dict[tuple[str, int], int]:
        """Next offsets stored by earlier batches of this consumer group."""
        self.ensure_control()
        rows = self.session.query(plan.select_offsets(self.consumer_group))
        return {(topic, int(partition)): int(offset) for topic, partition, offset in rows}

    def _target(
        self, table: TableId, schema: TableSchema, info: TableInfo, position: str
    ) -> plan.MergeTarget:
        """The merge target of a table, creating, widening or evolving its warehouse tables.

        Raises:
            MergeError: the table has no key, uses a reserved column name, or a column changed type
                in a way the warehouse column cannot follow (see `merge.evolution`).
        """
        known = self._targets.get(table)
        if known is not None and (table, schema) in self._fitted:
            return known
        names = self.names(table, info)
        check_column_names(table, schema.names)
        if not schema.key:
            raise MergeError(
                "table has no primary key; give it one, or set REPLICA IDENTITY FULL and configure "
                "key columns (not supported yet)",
                table=str(table),
            )
        existing = self.session.table_columns(names.schema, names.history)
        columns, widened = self._merge_columns(table, names, known, schema, existing)
        target = self.dialect.SCRATCH.target(plan.MergeTarget(names, tuple(columns), schema.key))
        if existing is None:
            self._create(target, table, info)
        else:
            self._widen(target, existing, widened)
        self._targets[table] = target
        self._fitted.add((table, schema))
        self._log_schema(table, schema, position)
        return target

    def _log_schema(self, table: TableId, schema: TableSchema, position: str) -> None:
        """Record a schema in `_cdchub.schema_log` the first time it is seen."""
        if not schema.columns:
            return  # a truncate's placeholder schema
        columns = json.dumps([[c.name, _describe(c.type)] for c in schema.columns])
        query = plan.select_schema_logged(table.source, table.namespace, table.table, columns)
        if self.session.query(query):
            return
        row = (
            table.source,
            table.namespace,
            table.table,
            columns,
            json.dumps(list(schema.key)),
            position,
            dt.datetime.now(dt.UTC),
        )
        insert = plan.insert_rows(
            plan.control_table(plan.SCHEMAS), [c for c, _ in plan.SCHEMAS_COLUMNS]
        )
        with self.session.transaction():
            self.session.executemany(insert, [row])

    def _stored_target(
        self, table: TableId, schema: TableSchema, info: TableInfo
    ) -> plan.MergeTarget | None:
        """The target of a table this engine has not merged yet but the warehouse holds.

        A batch may open with a truncate of such a table (a restarted consumer). Truncate records
        carry no key, so the key comes from the table registry.
        """
        names = self.names(table, info)
        if self.session.table_columns(names.schema, names.history) is None:
            return None
        registry = plan.control_table(plan.TABLES)
        query = (
            exp.select(plan.col("key_columns"))
            .from_(registry)
            .where(
                exp.and_(
                    *(
                        exp.EQ(this=plan.col(column), expression=exp.Literal.string(value))
                        for column, value in (
                            ("source", table.source),
                            ("source_schema", table.namespace),
                            ("source_table", table.table),
                        )
                    )
                )
            )
        )
        rows = self.session.query(query)
        if not rows:
            return None
        key = tuple(json.loads(rows[0][0]))
        return self._target(table, TableSchema(schema.columns, key), info, "")

    def _merge_columns(
        self,
        table: TableId,
        names: TableNames,
        known: plan.MergeTarget | None,
        schema: TableSchema,
        existing: list[str] | None,
    ) -> tuple[list[tuple[str, ColumnType]], list[str]]:
        """Warehouse columns after this schema (known ones in order, then new ones) and the widened.

        Columns the source dropped stay (NULL from then on): history never loses a column.
        """
        columns: dict[str, ColumnType] = dict(known.columns) if known else {}
        if not columns and existing:
            # A restart: the warehouse has the table; keep its order and the recorded types (tables
            # made before types were recorded take them from the schema).
            recorded = self._recorded_types(names)
            for name in existing:
                if name in recorded:
                    columns[name] = recorded[name]
                elif name in schema.names:
                    columns[name] = schema.column(name).type
                elif not name.startswith("_cdc_"):
                    columns[name] = ColumnType("string")
        widened = []
        for column in schema.columns:
            old = columns.get(column.name)
            if old is None:
                columns[column.name] = column.type
                continue
            verdict = evolve(old, column.type, self.dialect)
            if verdict.change is Change.INCOMPATIBLE:
                raise SchemaChangeError(
                    f"column {column.name!r} changed type from {_describe(old)} to "
                    f"{_describe(column.type)}, which its warehouse column cannot hold without "
                    "losing data. The table is stopped and its changes are held in the warehouse; "
                    "the other tables go on. Alter the warehouse column by hand (history and "
                    "current table) to a type that holds both, run `cdchub schema accept "
                    f"{table.source}.{table.namespace}.{table.table}`, then restart `cdchub run`",
                    table,
                    table=str(table),
                    column=column.name,
                    old_type=_describe(old),
                    new_type=_describe(column.type),
                    new_column_type=column.type,
                )
            if verdict.change is Change.WIDEN:
                columns[column.name] = verdict.column_type
                widened.append(column.name)
        return list(columns.items()), widened

    def _create(self, target: plan.MergeTarget, table: TableId, info: TableInfo) -> None:
        with self.session.transaction():
            self.session.execute(plan.create_schema(target.names.schema))
            self.session.execute(
                plan.create_table(target.history, plan.history_columns(target), self.dialect)
            )
            self.session.execute(
                plan.create_table(target.current, plan.current_columns(target), self.dialect)
            )
            if self.dialect.INDEXES_HISTORY:
                index = plan.history_index(target, self.dialect.MAX_IDENTIFIER_LENGTH)
                self.session.execute(index)
            self._register(target, table, info)
            self._record_types(target, target.column_names)

    def _recorded_types(self, names: TableNames) -> dict[str, ColumnType]:
        rows = self.session.query(plan.select_column_types(names.schema, names.history))
        return {name: column_type_from_json(text) for name, text in rows}

    def _record_types(self, target: plan.MergeTarget, changed: list[str]) -> None:
        """Remember the source type each changed column now has in the warehouse."""
        if not changed:
            return
        types = dict(target.columns)
        schema, history = target.names.schema, target.names.history
        self.session.execute(plan.delete_column_types(schema, history, changed))
        now = dt.datetime.now(dt.UTC)
        insert = plan.insert_rows(
            plan.control_table(plan.COLUMNS), [c for c, _ in plan.COLUMNS_COLUMNS]
        )
        self.session.executemany(
            insert,
            [(schema, history, n, column_type_to_json(types[n]), now) for n in changed],
        )

    def _widen(self, target: plan.MergeTarget, existing: list[str], widened: list[str]) -> None:
        """Add the columns the source gained; alter the ones it widened (both tables)."""
        missing = [(n, t) for n, t in target.columns if n not in existing]
        altered = [(n, t) for n, t in target.columns if n in widened and n in existing]
        if not missing and not altered:
            return
        with self.session.transaction():
            for tbl in (target.history, target.current):
                for name, ctype in missing:
                    self.session.execute(plan.add_column(tbl, name, ctype, self.dialect))
                for name, ctype in altered:
                    self.session.execute(plan.alter_column_type(tbl, name, ctype, self.dialect))
            self._record_types(target, [n for n, _ in [*missing, *altered]])

    def _register(self, target: plan.MergeTarget, table: TableId, info: TableInfo) -> None:
        names: TableNames = target.names
        row = (
            table.source,
            info.source_kind,
            info.source_database,
            table.namespace,
            table.table,
            names.schema,
            names.current,
            names.history,
            json.dumps(list(target.key)),
            dt.datetime.now(dt.UTC),
        )
        columns = [c for c, _ in plan.TABLES_COLUMNS]
        self.session.executemany(plan.insert_rows(plan.control_table(plan.TABLES), columns), [row])

    # -- apply ----------------------------------------------------------------------------------

    def apply(
        self,
        events_by_table: dict[TableId, list[ChangeEvent]],
        infos: dict[TableId, TableInfo],
        checkpoints: Iterable[Checkpoint],
        parked: ParkedChanges | None = None,
    ) -> BatchResult:
        """Apply one batch (see `_apply_once`), retrying the whole transaction on retryable errors.

        A retry re-runs the complete warehouse transaction: the failed attempt rolled back (data,
        offsets and parked records together), and a commit whose acknowledgement was lost is
        recognised by the merge (`remove_applied` drops events at or before the stored positions),
        so the batch still takes effect exactly once.

        Raises:
            MergeError: a terminal driver error, or a retryable one that outlasted the retries;
                with the tables and offsets of the batch.
        """
        checkpoints = list(checkpoints)

        def context() -> dict[str, Any]:
            return {
                "tables": ",".join(str(t) for t in events_by_table) or None,
                "offsets": ",".join(
                    f"{c.stream}[{c.partition}]@{c.next_offset}" for c in checkpoints
                )
                or None,
            }

        try:
            for attempt in retrying("warehouse batch", context):
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        self._after_failure()
                    return self._apply_once(events_by_table, infos, checkpoints, parked)
        except TableApplyError as exc:  # one table at fault: the runner dead-letters it
            raise TableApplyError(
                exc.message, exc.table_id, **{**exc.context, **context()}
            ) from exc.__cause__
        except CdcHubError:
            raise  # typed already (a schema change stops its table; the runner handles it)
        except Exception as exc:
            verdict = "retries exhausted" if is_retryable(exc) else "terminal error"
            raise MergeError(
                f"warehouse batch failed ({verdict}): {first_line(exc)}", **context()
            ) from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _after_failure(self) -> None:
        """Forget what a failed attempt may have left half-made; reconnect if the link broke."""
        self._targets.clear()
        self._fitted.clear()
        self._scratch_ready.clear()
        reconnect = getattr(self.session, "reconnect", None)
        if reconnect is not None:
            reconnect()

    def _apply_once(
        self,
        events_by_table: dict[TableId, list[ChangeEvent]],
        infos: dict[TableId, TableInfo],
        checkpoints: list[Checkpoint],
        parked: ParkedChanges | None = None,
    ) -> BatchResult:
        """Merge every table's events and store the checkpoints (and parked records), in one transaction."""
        self.ensure_control()
        targets = {}
        for table, events in events_by_table.items():
            # Each distinct schema in the batch, with the position where it first appears.
            first_seen: dict[int, ChangeEvent] = {}
            for e in events:
                if e.op is not Op.TRUNCATE:
                    first_seen.setdefault(id(e.schema), e)
            for e in first_seen.values():
                try:
                    targets[table] = self._target(table, e.schema, infos[table], e.position)
                except SchemaChangeError:
                    raise
                except MergeError as exc:  # key-less, reserved column names: this table only
                    raise TableApplyError(exc.message, table, **exc.context) from exc
            if table not in targets:
                known = self._targets.get(table) or self._stored_target(
                    table, events[0].schema, infos[table]
                )
                if known is None:
                    continue  # a truncate of a table never seen: nothing to close
                targets[table] = known
        # Each table's plan is built once, before the transaction: its `prepare` steps may be DDL.
        segments = {table: _segments(events_by_table[table]) for table in targets}
        plans = {
            table: plan_table_batch(
                target, [_spec(s) for s in segments[table]], self.dialect.SCRATCH, self.dialect
            )
            for table, target in targets.items()
        }
        for batch_plan in plans.values():
            self._prepare_scratch(batch_plan)
        batch_id = uuid.uuid4().hex
        results: list[TableResult] = []
        with self.session.transaction():
            for table, events in events_by_table.items():
                if table in targets:
                    with self.observer.merge_table(table, targets[table].names, events):
                        try:
                            versions = self._run_plan(plans[table], table, segments[table])
                            results.append(TableResult(table, len(events), versions))
                        except UnrepresentableValue as exc:  # a value this warehouse cannot hold
                            exc.table_id = table  # the runner dead-letters it like TableApplyError
                            raise
                        except CdcHubError:
                            raise
                        except Exception as exc:
                            if is_retryable(exc):
                                raise  # retried whole by `apply`; no table is at fault
                            raise TableApplyError(
                                f"the warehouse refused the changes: {first_line(exc)}",
                                table,
                                table=str(table),
                            ) from exc
            checkpoints = list(checkpoints)
            self._store_checkpoints(checkpoints)
            if parked is not None:
                self._store_parked(parked)
            committed_at = dt.datetime.now(dt.UTC)
            self._log_offsets(batch_id, checkpoints, committed_at)
            for result in results:
                result.lags_ms = [
                    max(0.0, (committed_at - e.commit_time).total_seconds() * 1000)
                    for e in events_by_table[result.table]
                    if not e.snapshot
                ]
            self._log_batch(batch_id, results, events_by_table, committed_at)
        return BatchResult(batch_id, results, committed_at)

    def _run_plan(
        self, batch_plan: BatchPlan, table: TableId, segments: list[list[ChangeEvent]]
    ) -> int:
        """Execute a table's plan in the open transaction; the number of versions it added."""
        target = batch_plan.target
        versions = 0
        for step in batch_plan.steps:
            if step.kind is StepKind.LOAD:
                segment = segments[step.segment]
                rows = [] if segment[0].op is Op.TRUNCATE else _stage_rows(target, segment)
                try:
                    self.session.load_stage(
                        target.stage_name, plan.stage_columns(target), rows, create=step.create
                    )
                except UnrepresentableValue as exc:
                    raise UnrepresentableValue(
                        exc.message, **exc.context, table=str(table)
                    ) from None
            elif step.kind is StepKind.COUNT:
                assert step.statement is not None
                versions += int(self.session.query(step.statement)[0][0])
            else:
                assert step.statement is not None
                self.session.execute(step.statement)
        return versions

    def _prepare_scratch(self, batch_plan: BatchPlan) -> None:
        """Run a plan's `prepare` steps once per target and session, outside any transaction.

        Where DDL commits the open transaction (Snowflake), creating scratch tables inside the batch
        would commit half of it; created here, the batch only empties and fills them (DML).
        """
        target = batch_plan.target
        if not batch_plan.prepare or target in self._scratch_ready:
            return
        for step in batch_plan.prepare:
            if step.kind is StepKind.LOAD:
                self.session.load_stage(target.stage_name, plan.stage_columns(target), [])
            elif step.statement is not None:
                self.session.execute(step.statement)
        self._scratch_ready.add(target)

    def _store_checkpoints(self, checkpoints: Iterable[Checkpoint]) -> None:
        by_stream: dict[str, list[Checkpoint]] = {}
        for cp in checkpoints:
            by_stream.setdefault(cp.stream, []).append(cp)
        now = dt.datetime.now(dt.UTC)
        columns = [c for c, _ in plan.OFFSETS_COLUMNS]
        insert = plan.insert_rows(plan.control_table(plan.OFFSETS), columns)
        for stream, cps in by_stream.items():
            self.session.execute(
                plan.delete_offsets(self.consumer_group, stream, [c.partition for c in cps])
            )
            self.session.executemany(
                insert,
                [(self.consumer_group, stream, c.partition, c.next_offset, now) for c in cps],
            )

    def _log_offsets(
        self, batch_id: str, checkpoints: list[Checkpoint], committed_at: dt.datetime
    ) -> None:
        """The Kafka offsets a batch ends at, next to its lag rows (`_cdchub.batch_offsets`)."""
        rows = [
            (batch_id, self.consumer_group, c.stream, c.partition, c.next_offset, committed_at)
            for c in checkpoints
        ]
        columns = [c for c, _ in plan.BATCH_OFFSETS_COLUMNS]
        self.session.executemany(
            plan.insert_rows(plan.control_table(plan.BATCH_OFFSETS), columns), rows
        )

    def parked_records(self) -> list[tuple[StreamRecord, str]]:
        """Records stored by earlier batches of this consumer group, with why, in stream order."""
        self.ensure_control()
        rows = self.session.query(plan.select_parked(self.consumer_group))
        return [
            (StreamRecord(t, int(p), int(o), int(ts), _bytes(k), _bytes(v)), reason)
            for t, p, o, ts, k, v, reason in rows
        ]

    def migrate_transaction_parking(self) -> int:
        """Give records parked in the warehouse by an older version back to Kafka.

        Older versions stored incomplete transactions' records in `_cdchub.parked_records` and moved
        the offsets past them. Kafka is the buffer now: the stored offset of each such partition is
        rewound to its earliest parked record (the re-read is idempotent) and the rows are dropped,
        in one transaction. Returns the number of records migrated.
        """
        parked = [r for r, reason in self.parked_records() if reason == PARKED_FOR_TRANSACTION]
        if not parked:
            return 0
        earliest: dict[tuple[str, int], int] = {}
        for r in parked:
            key = (r.stream, r.partition)
            earliest[key] = min(earliest.get(key, r.offset), r.offset)
        stored = self.stored_checkpoints()
        rewound = [
            Checkpoint(topic, partition, min(offset, stored.get((topic, partition), offset)))
            for (topic, partition), offset in earliest.items()
        ]
        with self.session.transaction():
            self._store_checkpoints(rewound)
            self.session.execute(
                plan.delete_parked_reason(self.consumer_group, PARKED_FOR_TRANSACTION)
            )
        return len(parked)

    def _store_parked(self, parked: ParkedChanges) -> None:
        removed: dict[tuple[str, int], list[int]] = {}
        for r in parked.removed:
            removed.setdefault((r.stream, r.partition), []).append(r.offset)
        for (stream, partition), offsets in removed.items():
            self.session.execute(
                plan.delete_parked(self.consumer_group, stream, partition, offsets)
            )
        now = dt.datetime.now(dt.UTC)
        if parked.held:
            columns = [c for c, _ in plan.PARKED_COLUMNS]
            self.session.executemany(
                plan.insert_rows(plan.control_table(plan.PARKED), columns),
                [
                    (
                        self.consumer_group,
                        r.stream,
                        r.partition,
                        r.offset,
                        r.timestamp,
                        r.key,
                        r.value,
                        now,
                        HELD_FOR_SCHEMA,
                    )
                    for r in parked.held
                ],
            )
        if parked.dead:
            dead_letters.store(self.session, parked.dead)
        if parked.resolved:
            dead_letters.set_status(
                self.session, self.consumer_group, parked.resolved, dead_letters.APPLIED
            )
        if parked.forced:
            columns = [c for c, _ in plan.FORCED_COLUMNS]
            self.session.executemany(
                plan.insert_rows(plan.control_table(plan.FORCED), columns),
                [
                    (self.consumer_group, f.source, f.tx_id, f.arrived, f.expected, f.reason, now)
                    for f in parked.forced
                ],
            )

    def _log_batch(
        self,
        batch_id: str,
        results: list[TableResult],
        events_by_table: dict[TableId, list[ChangeEvent]],
        committed_at: dt.datetime,
    ) -> None:
        rows = []
        for result in results:
            events = events_by_table[result.table]
            lags = sorted(result.lags_ms)
            stats: list[float | None] = [None] * 5
            if lags:
                stats = [
                    lags[0],
                    percentile(lags, 50),
                    percentile(lags, 95),
                    percentile(lags, 99),
                    lags[-1],
                ]
            rows.append(
                (
                    batch_id,
                    result.table.source,
                    f"{result.table.namespace}.{result.table.table}",
                    result.events,
                    result.versions,
                    *stats,
                    min(e.commit_time for e in events),
                    max(e.commit_time for e in events),
                    committed_at,
                )
            )
        if rows:
            columns = [c for c, _ in plan.BATCHES_COLUMNS]
            self.session.executemany(
                plan.insert_rows(plan.control_table(plan.BATCHES), columns), rows
            )


def column_type_to_json(ctype: ColumnType) -> str:
    """A ColumnType as JSON text (for the control schema)."""
    return json.dumps(dataclasses.asdict(ctype), sort_keys=True)


def column_type_from_json(text: str) -> ColumnType:
    """The ColumnType stored by `column_type_to_json`."""

    def build(doc: dict[str, Any]) -> ColumnType:
        element = doc.pop("element", None)
        known = {f.name for f in dataclasses.fields(ColumnType)}
        args = {k: v for k, v in doc.items() if k in known}
        return ColumnType(**args, element=build(element) if element else None)

    return build(json.loads(text))


def _describe(ctype: ColumnType) -> str:
    if ctype.kind == "decimal":
        return f"decimal({ctype.precision}, {ctype.scale or 0})"
    return ctype.logical or ctype.kind


def _bytes(value: Any) -> bytes | None:
    """A binary column value as bytes (drivers return bytes, bytearray or memoryview)."""
    return None if value is None else bytes(value)


def _segments(events: list[ChangeEvent]) -> list[list[ChangeEvent]]:
    """Split a table's events at truncates: each truncate is a segment of its own."""
    segments: list[list[ChangeEvent]] = []
    current: list[ChangeEvent] = []
    for event in events:
        if event.op is Op.TRUNCATE:
            if current:
                segments.append(current)
                current = []
            segments.append([event])
        else:
            current.append(event)
    if current:
        segments.append(current)
    return segments


def _spec(segment: list[ChangeEvent]) -> SegmentSpec:
    """What the plan needs of a segment: its truncate, or the columns some change did not carry."""
    first = segment[0]
    if first.op is Op.TRUNCATE:
        return SegmentSpec(truncate=(first.position, first.commit_time, first.tx_id))
    return SegmentSpec(
        unavailable=tuple(sorted({c for e in segment for c in e.unavailable})),
        snapshot=any(e.op is Op.READ for e in segment),
    )


def _stage_rows(target: plan.MergeTarget, events: list[ChangeEvent]) -> list[tuple[Any, ...]]:
    """One staged row per distinct (key, position); a duplicate inside the batch is dropped here."""
    seen: set[tuple[Any, ...]] = set()
    rows: list[tuple[Any, ...]] = []
    names = target.column_names
    for event in events:
        identity = (event.key, event.position)
        if identity in seen:
            continue
        seen.add(identity)
        image = event.image or {}
        rows.append(
            (
                *(image.get(n) for n in names),
                event.commit_time,
                event.op is Op.DELETE,
                event.op.value,
                event.position,
                event.tx_id,
                plan.unavailable_marker(target, [c for c in event.unavailable if c in names]),
            )
        )
    return rows
