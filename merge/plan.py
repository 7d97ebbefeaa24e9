"""SQL builders of the SCD Type 2 merge, as sqlglot trees (rendered per dialect at the last moment).

The merge of one batch segment into one table is these set-based statements, run in one warehouse
transaction together with the Kafka offsets:

1. `remove_applied`   — drop staged versions whose (key, position) is already in history. This is what
                        makes the merge replay-safe: a re-delivered change finds itself and vanishes.
2. `collect_keys`     — the keys this segment touches.
3. `insert_versions`  — append the new versions (open, not yet linked).
4. `relink`           — recompute `_cdc_valid_to` / `_cdc_is_current` of every version of the touched keys
                        from the order of `_cdc_source_pos`; a late or out-of-order change is thereby spliced
                        into its place, and running it twice changes nothing.
4b. `carry_unavailable` — a column the source did not send (PostgreSQL unchanged TOAST, staged with
                        a per-column marker) takes the value of the key's latest earlier version that
                        had one.
5. `carry_forward`    — a delete version takes the values of the version it closes (a delete may arrive
                        with only the key: PostgreSQL's REPLICA IDENTITY DEFAULT).
6. `refresh_current`  — replace the touched keys in the current table with their current, live version.
                        Derived from history, so the current table only ever shows the latest position.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from core.model import ColumnType
from merge.naming import (
    CONTROL_SCHEMA as CONTROL_SCHEMA,  # re-exported: callers spell it plan.CONTROL_SCHEMA
)
from merge.naming import (
    CURRENT_META,
    HISTORY_META,
    IS_CURRENT,
    IS_DELETED,
    OP,
    SOURCE_POS,
    TX_ID,
    VALID_FROM,
    VALID_TO,
    TableNames,
    fit_identifier,
)

if TYPE_CHECKING:
    from merge.dialect import Dialect

STAGE = "_cdc_stage"
KEYS = "_cdc_keys"
# ",3,7," — positions (in MergeTarget.columns) of the columns a staged change did not carry.
UNAVAILABLE = "_cdc_unavailable"
# Staged rows carry these besides the source columns.
STAGE_META: tuple[tuple[str, str], ...] = (
    (VALID_FROM, "timestamptz"),
    (IS_DELETED, "boolean"),
    (OP, "string"),
    (SOURCE_POS, "string"),
    (TX_ID, "string"),
    (UNAVAILABLE, "string"),
)


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: every name that can come from a source schema is quoted."""
    return exp.to_identifier(name, quoted=True)


def table(name: str, schema: str | None = None) -> exp.Table:
    """A (schema-qualified) table reference."""
    return exp.Table(this=ident(name), db=ident(schema) if schema else None)


def col(name: str, qualifier: str | None = None) -> exp.Column:
    """A (qualified) column reference."""
    return exp.Column(this=ident(name), table=ident(qualifier) if qualifier else None)


def _and(conditions: Sequence[exp.Expr]) -> exp.Expr:
    return exp.and_(*conditions) if len(conditions) > 1 else conditions[0]


def _key_match(key: Sequence[str], left: str, right: str) -> exp.Expr:
    return _and([exp.EQ(this=col(k, left), expression=col(k, right)) for k in key])


def update(
    tbl: exp.Table,
    assignments: Sequence[tuple[str, exp.Expression]],
    where: exp.Expr,
    from_: exp.Expression,
) -> exp.Update:
    """`UPDATE tbl SET … FROM … WHERE …`, built node by node so no source name is ever re-parsed."""
    return exp.Update(
        this=tbl,
        expressions=[exp.EQ(this=col(name), expression=value) for name, value in assignments],
        from_=exp.From(this=from_),
        where=exp.Where(this=where),
    )


@dataclass(frozen=True)
class MergeTarget:
    """One warehouse table pair and the source columns it holds."""

    names: TableNames
    columns: tuple[tuple[str, ColumnType], ...]
    key: tuple[str, ...]
    # Where a segment is staged; the dialect's scratch strategy names them (`merge.scratch`).
    stage_name: str = STAGE
    keys_name: str = KEYS

    @property
    def stage(self) -> exp.Table:
        return table(self.stage_name)

    @property
    def keys(self) -> exp.Table:
        return table(self.keys_name)

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def value_columns(self) -> list[str]:
        return [name for name, _ in self.columns if name not in self.key]

    @property
    def history(self) -> exp.Table:
        return table(self.names.history, self.names.schema)

    @property
    def current(self) -> exp.Table:
        return table(self.names.current, self.names.schema)


def meta_type(kind: str) -> ColumnType:
    """The ColumnType of a metadata column kind."""
    return ColumnType(kind)


def stage_columns(target: MergeTarget) -> list[tuple[str, ColumnType]]:
    """Columns of the staging table, in load order."""
    return [*target.columns, *((n, meta_type(k)) for n, k in STAGE_META)]


def stage_from(
    name: str, source: str, columns: Sequence[tuple[str, ColumnType]], dialect: Dialect
) -> exp.Expression:
    """`CREATE TEMP TABLE name AS SELECT CAST(c AS <type>) … FROM source` (a registered bulk view)."""
    select = exp.select(
        *(exp.cast(col(c), dialect.column_type(t)).as_(ident(c)) for c, t in columns)
    ).from_(table(source))
    return exp.Create(
        this=table(name),
        kind="TABLE",
        expression=select,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )


def stage_into(
    name: str, source: str, columns: Sequence[tuple[str, ColumnType]], dialect: Dialect
) -> exp.Expression:
    """`INSERT INTO name SELECT CAST(c AS <type>) … FROM source`: `stage_from` into a kept stage."""
    select = exp.select(
        *(exp.cast(col(c), dialect.column_type(t)).as_(ident(c)) for c, t in columns)
    ).from_(table(source))
    return exp.insert(select, table(name), columns=[ident(c) for c, _ in columns])


# -- DDL -------------------------------------------------------------------------------------------


def create_schema(name: str) -> exp.Expression:
    """`CREATE SCHEMA IF NOT EXISTS`."""
    return exp.Create(this=exp.Table(this=ident(name)), kind="SCHEMA", exists=True)


def create_table(
    tbl: exp.Table,
    columns: Sequence[tuple[str, ColumnType]],
    dialect: Dialect,
    *,
    temporary: bool = False,
) -> exp.Expression:
    """`CREATE TABLE IF NOT EXISTS` with each column in the dialect's exact type."""
    defs = [exp.ColumnDef(this=ident(n), kind=dialect.column_type(t)) for n, t in columns]
    props = exp.Properties(expressions=[exp.TemporaryProperty()]) if temporary else None
    return exp.Create(
        this=exp.Schema(this=tbl, expressions=defs), kind="TABLE", exists=True, properties=props
    )


def history_columns(target: MergeTarget) -> list[tuple[str, ColumnType]]:
    """Columns of the history table: source columns, then the `_cdc_` metadata."""
    return [*target.columns, *((n, meta_type(k)) for n, k in HISTORY_META)]


def current_columns(target: MergeTarget) -> list[tuple[str, ColumnType]]:
    """Columns of the current table: source columns, then a few `_cdc_` columns."""
    return [*target.columns, *((n, meta_type(k)) for n, k in CURRENT_META)]


def add_column(tbl: exp.Table, name: str, ctype: ColumnType, dialect: Dialect) -> exp.Expression:
    """`ALTER TABLE … ADD COLUMN` for a column the source gained."""
    return exp.Alter(
        this=tbl.copy(),
        kind="TABLE",
        actions=[exp.ColumnDef(this=ident(name), kind=dialect.column_type(ctype))],
    )


def alter_column_type(
    tbl: exp.Table, name: str, ctype: ColumnType, dialect: Dialect
) -> exp.Expression:
    """`ALTER TABLE … ALTER COLUMN … SET DATA TYPE` for a column the source widened."""
    return exp.Alter(
        this=tbl.copy(),
        kind="TABLE",
        actions=[exp.AlterColumn(this=ident(name), dtype=dialect.column_type(ctype))],
    )


def history_index(target: MergeTarget, max_identifier_length: int | None) -> exp.Expression:
    """`CREATE INDEX IF NOT EXISTS` on history (key…, `_cdc_source_pos`): a version's identity.

    remove_applied probes it for (key, position) and relink/carry_forward read every version of the
    touched keys; the name is shortened with a hash when it would pass the identifier limit.
    """
    name = fit_identifier(f"{target.names.history}_cdc_key_pos", max_identifier_length)
    columns = [exp.Ordered(this=col(c)) for c in [*target.key, SOURCE_POS]]
    return exp.Create(
        this=exp.Index(
            this=ident(name),
            table=target.history,
            params=exp.IndexParameters(columns=columns),
        ),
        kind="INDEX",
        exists=True,
    )


def drop_table(tbl: exp.Table) -> exp.Expression:
    """`DROP TABLE IF EXISTS`."""
    return exp.Drop(tables=[tbl], kind="TABLE", exists=True)


# -- the merge -------------------------------------------------------------------------------------


def remove_applied(target: MergeTarget) -> exp.Expression:
    """Step 1: delete staged versions already present in history (same key, same position)."""
    probe = (
        exp.select(exp.Literal.number(1))
        .from_(target.history.as_("h"))
        .where(
            _and(
                [
                    _key_match(target.key, "h", target.stage_name),
                    exp.EQ(
                        this=col(SOURCE_POS, "h"), expression=col(SOURCE_POS, target.stage_name)
                    ),
                ]
            )
        )
    )
    return exp.delete(target.stage, where=exp.Exists(this=probe))


def drop_unchanged_snapshot_rows(target: MergeTarget) -> exp.Expression:
    """Step 0b: delete staged snapshot rows (`r`) equal to the version they would follow.

    An incremental snapshot (`cdchub backfill`) re-reads rows that are usually already in history.
    A re-read row whose values equal the key's previous version (by position, among the history and
    the stage, and not a delete) is not a change: writing it would be a fake version. One that
    differs is kept: the warehouse had missed a change, and the snapshot repairs that drift.
    Values are compared null-safely (`IS NOT DISTINCT FROM`).
    """
    names = target.column_names
    carried = [*names, SOURCE_POS, IS_DELETED, OP]
    in_stage = exp.Exists(
        this=exp.select(exp.Literal.number(1))
        .from_(target.stage.as_("k"))
        .where(_key_match(target.key, "k", "h"))
    )
    union = exp.union(
        exp.select(*(col(c, "h") for c in carried)).from_(target.history.as_("h")).where(in_stage),
        exp.select(*(col(c) for c in carried)).from_(target.stage.copy()),
        distinct=False,
    )
    lagged = exp.select(
        *(col(c) for c in carried),
        _window(target, "LAG", SOURCE_POS).as_("_prev_pos"),
        _window(target, "LAG", IS_DELETED).as_("_prev_deleted"),
        *(_window(target, "LAG", v).as_(f"_prev_{i}") for i, v in enumerate(target.value_columns)),
    ).from_(exp.Subquery(this=union, alias=exp.TableAlias(this=ident("u"))))
    same = [
        exp.EQ(this=col(OP, "p"), expression=exp.Literal.string("r")),
        exp.not_(exp.Is(this=col("_prev_pos", "p"), expression=exp.null())),
        exp.not_(col("_prev_deleted", "p")),
        *(
            exp.NullSafeEQ(this=col(v, "p"), expression=col(f"_prev_{i}", "p"))
            for i, v in enumerate(target.value_columns)
        ),
    ]
    probe = (
        exp.select(exp.Literal.number(1))
        .from_(exp.Subquery(this=lagged, alias=exp.TableAlias(this=ident("p"))))
        .where(
            _and(
                [
                    _key_match(target.key, "p", target.stage_name),
                    exp.EQ(
                        this=col(SOURCE_POS, "p"), expression=col(SOURCE_POS, target.stage_name)
                    ),
                    *same,
                ]
            )
        )
    )
    return exp.delete(
        target.stage,
        where=_and(
            [
                exp.EQ(this=col(OP, target.stage_name), expression=exp.Literal.string("r")),
                exp.Exists(this=probe),
            ]
        ),
    )


def collect_keys(target: MergeTarget, source: exp.Expression | None = None) -> exp.Expression:
    """Step 2: `CREATE TEMP TABLE _cdc_keys AS SELECT DISTINCT <key> FROM _cdc_stage`."""
    select = exp.select(*(col(k) for k in target.key)).distinct().from_(source or target.stage)
    return exp.Create(
        this=target.keys,
        kind="TABLE",
        expression=select,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )


def fill_keys(target: MergeTarget) -> exp.Expression:
    """Step 2 without DDL: `INSERT INTO <keys> SELECT DISTINCT <key> FROM <stage>` (reused tables)."""
    select = exp.select(*(col(k) for k in target.key)).distinct().from_(target.stage)
    return exp.insert(select, target.keys, columns=[ident(k) for k in target.key])


def key_columns(target: MergeTarget) -> list[tuple[str, ColumnType]]:
    """The key columns with their types (the key table's columns)."""
    types = dict(target.columns)
    return [(k, types[k]) for k in target.key]


def empty_table(tbl: exp.Table) -> exp.Expression:
    """`DELETE FROM tbl`: DML, so it stays inside the batch's transaction (unlike TRUNCATE/DROP)."""
    return exp.delete(tbl.copy())


def insert_versions(target: MergeTarget) -> exp.Expression:
    """Step 3: append staged versions to history, open and unlinked (relink sets them)."""
    names = target.column_names
    select = exp.select(
        *(col(n) for n in names),
        col(VALID_FROM),
        exp.cast(exp.null(), "TIMESTAMPTZ"),
        exp.false(),
        col(IS_DELETED),
        col(OP),
        col(SOURCE_POS),
        col(TX_ID),
        exp.CurrentTimestamp(),
    ).from_(target.stage)
    columns = [*names, *(n for n, _ in HISTORY_META)]
    return exp.insert(select, target.history, columns=[ident(c) for c in columns])


def _touched(target: MergeTarget, alias: str) -> exp.Expression:
    probe = (
        exp.select(exp.Literal.number(1))
        .from_(target.keys)
        .where(_key_match(target.key, target.keys_name, alias))
    )
    return exp.Exists(this=probe)


def _window(target: MergeTarget, func: str, column: str) -> exp.Expression:
    return exp.Window(
        this=exp.Anonymous(this=func, expressions=[col(column)]),
        partition_by=[col(k) for k in target.key],
        order=exp.Order(expressions=[exp.Ordered(this=col(SOURCE_POS))]),
    )


def _suffix_min(target: MergeTarget, column: str) -> exp.Expression:
    """MIN(column) over this version and every later one of its key (by position)."""
    return exp.Window(
        this=exp.Min(this=col(column)),
        partition_by=[col(k) for k in target.key],
        order=exp.Order(expressions=[exp.Ordered(this=col(SOURCE_POS))]),
        spec=exp.WindowSpec(
            kind="ROWS", start="CURRENT ROW", end="UNBOUNDED", end_side="FOLLOWING"
        ),
    )


def relink(target: MergeTarget) -> exp.Expression:
    """Step 4: set valid_from/valid_to/is_current of every version of the touched keys.

    Validity must never run backwards along positions. Source clocks can disagree with source order:
    a snapshot row is stamped with the time it was *read*, later than changes committed (and streamed
    at later positions) while the snapshot ran; a clock step on the source does the same. So a
    version's `valid_from` is the earliest commit time among itself and its successors (a superseded
    snapshot row becomes a zero-length version), and `valid_to` is the next version's `valid_from`.
    Both derive from the stored values only, so relinking twice changes nothing.
    """
    clamped = (
        exp.select(
            *(col(k) for k in target.key),
            col(SOURCE_POS),
            _suffix_min(target, VALID_FROM).as_("eff_from"),
        )
        .from_(target.history.as_("h"))
        .where(_touched(target, "h"))
    )
    lead = exp.Window(
        this=exp.Anonymous(this="LEAD", expressions=[col("eff_from")]),
        partition_by=[col(k) for k in target.key],
        order=exp.Order(expressions=[exp.Ordered(this=col(SOURCE_POS))]),
    )
    lead_pos = exp.Window(
        this=exp.Anonymous(this="LEAD", expressions=[col(SOURCE_POS)]),
        partition_by=[col(k) for k in target.key],
        order=exp.Order(expressions=[exp.Ordered(this=col(SOURCE_POS))]),
    )
    links = exp.select(
        *(col(k) for k in target.key),
        col(SOURCE_POS),
        col("eff_from"),
        lead.as_("next_from"),
        lead_pos.as_("next_pos"),
    ).from_(exp.Subquery(this=clamped, alias=exp.TableAlias(this=ident("c"))))
    hist = target.names.history
    is_last = exp.Is(this=col("next_pos", "w"), expression=exp.null())
    changed = exp.or_(
        exp.NullSafeNEQ(this=col(VALID_FROM, hist), expression=col("eff_from", "w")),
        exp.NullSafeNEQ(this=col(VALID_TO, hist), expression=col("next_from", "w")),
        exp.NEQ(this=col(IS_CURRENT, hist), expression=exp.paren(is_last.copy())),
    )
    return update(
        target.history,
        [
            (VALID_FROM, col("eff_from", "w")),
            (VALID_TO, col("next_from", "w")),
            (IS_CURRENT, is_last),
        ],
        where=_and(
            [
                _key_match(target.key, hist, "w"),
                exp.EQ(this=col(SOURCE_POS, hist), expression=col(SOURCE_POS, "w")),
                exp.paren(changed),
            ]
        ),
        from_=exp.Subquery(this=links, alias=exp.TableAlias(this=ident("w"))),
    )


def carry_forward(target: MergeTarget) -> exp.Expression | None:
    """Step 5: a delete version takes the values of the version it closes (None: no value columns)."""
    values = target.value_columns
    if not values:
        return None
    prev = (
        exp.select(
            *(col(k) for k in target.key),
            col(SOURCE_POS),
            _window(target, "LAG", SOURCE_POS).as_("_prev_pos"),
            *(_window(target, "LAG", v).as_(f"_prev_{i}") for i, v in enumerate(values)),
        )
        .from_(target.history.as_("h"))
        .where(_touched(target, "h"))
    )
    hist = target.names.history
    return update(
        target.history,
        [(v, col(f"_prev_{i}", "p")) for i, v in enumerate(values)],
        where=_and(
            [
                _key_match(target.key, hist, "p"),
                exp.EQ(this=col(SOURCE_POS, hist), expression=col(SOURCE_POS, "p")),
                exp.EQ(this=col(OP, hist), expression=exp.Literal.string("d")),
                exp.not_(exp.Is(this=col("_prev_pos", "p"), expression=exp.null())),
            ]
        ),
        from_=exp.Subquery(this=prev, alias=exp.TableAlias(this=ident("p"))),
    )


def unavailable_marker(target: MergeTarget, columns: Sequence[str]) -> str | None:
    """The staged marker value for a change that did not carry `columns` (None: it carried all)."""
    if not columns:
        return None
    names = target.column_names
    return "," + ",".join(str(names.index(c)) for c in sorted(columns, key=names.index)) + ","


def carry_unavailable(target: MergeTarget, columns: Sequence[str]) -> exp.Expression | None:
    """Step 4b: fill the columns staged as unavailable from the key's latest earlier version.

    PostgreSQL does not log an unchanged TOASTed value (REPLICA IDENTITY DEFAULT), and Debezium sends
    a placeholder for it; the staged row holds NULL and a marker. Set-based: per column, a running
    count of versions that *had* the value splits each key's versions into groups that start with
    such a version, and FIRST_VALUE of the group is the value to carry. Several unavailable updates
    in a row (in one batch or across batches) all get it; a real NULL is carried like any value.
    Idempotent: a filled version is no longer marked once its batch commits, and re-running fills
    the same values.
    """
    names = target.column_names
    wanted = [c for c in names if c in set(columns)]
    if not wanted:
        return None
    index = {c: names.index(c) for c in wanted}
    hist = target.names.history
    # The segment's own stage: Snowflake names one per table (`merge.scratch.PersistentPerTable`).
    stage = target.stage_name
    marked = {
        c: exp.func(
            "COALESCE",
            exp.GT(
                this=exp.StrPosition(
                    this=col(UNAVAILABLE, stage), substr=exp.Literal.string(f",{index[c]},")
                ),
                expression=exp.Literal.number(0),
            ),
            exp.false(),
        )
        for c in wanted
    }
    joined = (
        exp.select(
            *(col(k, "h") for k in target.key),
            col(SOURCE_POS, "h"),
            *(col(c, "h").as_(f"_v{index[c]}") for c in wanted),
            *(marked[c].as_(f"_m{index[c]}") for c in wanted),
        )
        .from_(target.history.as_("h"))
        .join(
            target.stage,
            on=_and([_key_match(target.key, "h", stage), exp.EQ(
                this=col(SOURCE_POS, "h"), expression=col(SOURCE_POS, stage)
            )]),
            join_type="LEFT",
        )
        .where(_touched(target, "h"))
    )  # fmt: skip
    running = exp.WindowSpec(
        kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
    )
    grouped = exp.select(
        exp.Star(),
        *(
            exp.Window(
                this=exp.Sum(
                    this=exp.Case(
                        ifs=[exp.If(this=col(f"_m{index[c]}"), true=exp.Literal.number(0))],
                        default=exp.Literal.number(1),
                    )
                ),
                partition_by=[col(k) for k in target.key],
                order=exp.Order(expressions=[exp.Ordered(this=col(SOURCE_POS))]),
                spec=running.copy(),
            ).as_(f"_g{index[c]}")
            for c in wanted
        ),
    ).from_(exp.Subquery(this=joined, alias=exp.TableAlias(this=ident("j"))))
    filled = exp.select(
        *(col(k) for k in target.key),
        col(SOURCE_POS),
        *(col(f"_m{index[c]}") for c in wanted),
        *(
            exp.Window(
                this=exp.FirstValue(this=col(f"_v{index[c]}")),
                partition_by=[*(col(k) for k in target.key), col(f"_g{index[c]}")],
                order=exp.Order(expressions=[exp.Ordered(this=col(SOURCE_POS))]),
            ).as_(f"_f{index[c]}")
            for c in wanted
        ),
    ).from_(exp.Subquery(this=grouped, alias=exp.TableAlias(this=ident("g"))))
    return update(
        target.history,
        [
            (
                c,
                exp.Case(
                    ifs=[exp.If(this=col(f"_m{index[c]}", "w"), true=col(f"_f{index[c]}", "w"))],
                    default=col(c, hist),
                ),
            )
            for c in wanted
        ],
        where=_and(
            [
                _key_match(target.key, hist, "w"),
                exp.EQ(this=col(SOURCE_POS, hist), expression=col(SOURCE_POS, "w")),
                exp.paren(exp.or_(*(col(f"_m{index[c]}", "w") for c in wanted))),
            ]
        ),
        from_=exp.Subquery(this=filled, alias=exp.TableAlias(this=ident("w"))),
    )


def refresh_current(target: MergeTarget) -> list[exp.Expression]:
    """Step 6: replace the touched keys of the current table with their live current versions."""
    delete = exp.delete(target.current, where=_touched(target, target.names.current))
    names = target.column_names
    meta = [n for n, _ in CURRENT_META]
    select = (
        exp.select(*(col(n) for n in [*names, *meta]))
        .from_(target.history.as_("h"))
        .where(
            _and(
                [
                    col(IS_CURRENT, "h"),
                    exp.not_(col(IS_DELETED, "h")),
                    _touched(target, "h"),
                ]
            )
        )
    )
    insert = exp.insert(
        select,
        target.current,
        columns=[ident(c) for c in [*names, *meta]],
    )
    return [delete, insert]


def stage_truncate(
    target: MergeTarget, position: str, commit_time: dt.datetime, tx_id: str | None
) -> exp.Expression:
    """A truncate becomes one deleted version for each key live just before the truncate.

    "Live just before" is the key's latest version with a smaller position, so a re-delivered truncate
    never closes a key created after it, and re-applying it stages rows `remove_applied` drops.
    """
    names = target.column_names
    latest = exp.Window(
        this=exp.RowNumber(),
        partition_by=[col(k) for k in target.key],
        order=exp.Order(expressions=[exp.Ordered(this=col(SOURCE_POS), desc=True)]),
    )
    before = (
        exp.select(*(col(n) for n in [*names, IS_DELETED]), latest.as_("_cdc_rank"))
        .from_(target.history)
        .where(exp.LT(this=col(SOURCE_POS), expression=exp.Literal.string(position)))
    )
    select = (
        exp.select(
            *(col(n) for n in names),
            exp.cast(exp.Literal.string(commit_time.isoformat()), "TIMESTAMPTZ"),
            exp.true(),
            exp.Literal.string("t"),
            exp.Literal.string(position),
            exp.Literal.string(tx_id) if tx_id is not None else exp.null(),
            exp.null(),
        )
        .from_(exp.Subquery(this=before, alias=exp.TableAlias(this=ident("h"))))
        .where(
            exp.and_(
                exp.EQ(this=col("_cdc_rank", "h"), expression=exp.Literal.number(1)),
                exp.not_(col(IS_DELETED, "h")),
            )
        )
    )
    columns = [*names, *(n for n, _ in STAGE_META)]
    return exp.insert(select, target.stage, columns=[ident(c) for c in columns])


# -- control tables --------------------------------------------------------------------------------

OFFSETS = "kafka_offsets"
TABLES = "tables"
BATCHES = "batches"
BATCH_OFFSETS = "batch_offsets"
CHECKS = "checks"
PARKED = "parked_records"
SCHEMAS = "schema_log"
COLUMNS = "columns"
FORCED = "forced_releases"

OFFSETS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("consumer_group", "string"),
    ("topic", "string"),
    ("partition", "int32"),
    ("next_offset", "int64"),
    ("updated_at", "timestamptz"),
)
TABLES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source", "string"),
    ("source_kind", "string"),
    ("source_database", "string"),
    ("source_schema", "string"),
    ("source_table", "string"),
    ("warehouse_schema", "string"),
    ("current_table", "string"),
    ("history_table", "string"),
    ("key_columns", "string"),
    ("registered_at", "timestamptz"),
)
BATCHES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("batch_id", "string"),
    ("source", "string"),
    ("table_name", "string"),
    ("events", "int64"),
    ("versions", "int64"),
    ("lag_min_ms", "float64"),
    ("lag_p50_ms", "float64"),
    ("lag_p95_ms", "float64"),
    ("lag_p99_ms", "float64"),
    ("lag_max_ms", "float64"),
    ("first_commit_time", "timestamptz"),
    ("last_commit_time", "timestamptz"),
    ("committed_at", "timestamptz"),
)

# The next offset of every partition a batch read, so a batch row leads back to its Kafka records.
BATCH_OFFSETS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("batch_id", "string"),
    ("consumer_group", "string"),
    ("topic", "string"),
    ("partition", "int32"),
    ("next_offset", "int64"),
    ("committed_at", "timestamptz"),
)
# One row per check per table per run of `cdchub verify` (or of the checks inside `cdchub run`).
CHECKS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "string"),
    ("checked_at", "timestamptz"),
    ("source", "string"),
    ("table_name", "string"),
    ("check_name", "string"),
    ("ok", "boolean"),
    ("observed", "float64"),
    ("detail", "string"),
)


# Stream records of a table stopped by an incompatible schema change, stored raw with the offsets so
# a restart (after `cdchub schema accept`) applies them (see cdc_consumers/runner.py).
PARKED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("consumer_group", "string"),
    ("topic", "string"),
    ("partition", "int32"),
    ("record_offset", "int64"),
    ("record_timestamp", "int64"),
    ("record_key", "bytes"),
    ("record_value", "bytes"),
    ("parked_at", "timestamptz"),
    ("reason", "string"),
)


# Transactions applied without transaction consistency (stalled or larger than the buffer).
FORCED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("consumer_group", "string"),
    ("source", "string"),
    ("tx_id", "string"),
    ("events_arrived", "int64"),
    ("events_expected", "int64"),
    ("reason", "string"),
    ("released_at", "timestamptz"),
)


# Every distinct source schema a table has had, in the order first seen (schema evolution audit).
SCHEMAS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source", "string"),
    ("source_schema", "string"),
    ("source_table", "string"),
    ("columns", "string"),
    ("key_columns", "string"),
    ("first_position", "string"),
    ("first_seen_at", "timestamptz"),
)


# The source type each warehouse column was created or last altered for: after a restart the engine
# judges type changes against these, not against whatever the first event says.
COLUMNS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("warehouse_schema", "string"),
    ("history_table", "string"),
    ("column_name", "string"),
    ("column_type", "string"),
    ("updated_at", "timestamptz"),
)


def control_table(name: str) -> exp.Table:
    """A table of cdchub's own control schema."""
    return table(name, CONTROL_SCHEMA)


def control_ddl(dialect: Dialect) -> list[exp.Expression]:
    """Create the control schema and its tables (offsets, registry, batch log, checks)."""
    return [
        create_schema(CONTROL_SCHEMA),
        *(
            create_table(control_table(name), [(c, ColumnType(k)) for c, k in cols], dialect)
            for name, cols in (
                (OFFSETS, OFFSETS_COLUMNS),
                (TABLES, TABLES_COLUMNS),
                (BATCHES, BATCHES_COLUMNS),
                (BATCH_OFFSETS, BATCH_OFFSETS_COLUMNS),
                (CHECKS, CHECKS_COLUMNS),
                (PARKED, PARKED_COLUMNS),
                (SCHEMAS, SCHEMAS_COLUMNS),
                (COLUMNS, COLUMNS_COLUMNS),
                (FORCED, FORCED_COLUMNS),
            )
        ),
    ]


def delete_offsets(group: str, topic: str, partitions: Sequence[int]) -> exp.Expression:
    """Remove the stored offsets that are about to be replaced."""
    return exp.delete(
        control_table(OFFSETS),
        where=exp.and_(
            exp.EQ(this=col("consumer_group"), expression=exp.Literal.string(group)),
            exp.EQ(this=col("topic"), expression=exp.Literal.string(topic)),
            exp.In(this=col("partition"), expressions=[exp.Literal.number(p) for p in partitions]),
        ),
    )


def insert_rows(tbl: exp.Table, columns: Sequence[str]) -> exp.Expression:
    """`INSERT INTO tbl (cols) VALUES (?, ?, …)`: one parameterised row, for executemany."""
    values = exp.Tuple(expressions=[exp.Placeholder() for _ in columns])
    return exp.insert(
        exp.Values(expressions=[values]),
        tbl,
        columns=[ident(c) for c in columns],
    )


def select_offsets(group: str) -> exp.Expression:
    """The stored next offsets of a consumer group."""
    return (
        exp.select(col("topic"), col("partition"), col("next_offset"))
        .from_(control_table(OFFSETS))
        .where(exp.EQ(this=col("consumer_group"), expression=exp.Literal.string(group)))
    )


def delete_parked(group: str, topic: str, partition: int, offsets: Sequence[int]) -> exp.Expression:
    """Remove parked records that were applied (their transaction completed)."""
    return exp.delete(
        control_table(PARKED),
        where=exp.and_(
            exp.EQ(this=col("consumer_group"), expression=exp.Literal.string(group)),
            exp.EQ(this=col("topic"), expression=exp.Literal.string(topic)),
            exp.EQ(this=col("partition"), expression=exp.Literal.number(partition)),
            exp.In(this=col("record_offset"), expressions=[exp.Literal.number(o) for o in offsets]),
        ),
    )


def delete_parked_reason(group: str, reason: str) -> exp.Expression:
    """Remove every stored record of a consumer group parked for `reason`."""
    return exp.delete(
        control_table(PARKED),
        where=exp.and_(
            exp.EQ(this=col("consumer_group"), expression=exp.Literal.string(group)),
            exp.EQ(this=col("reason"), expression=exp.Literal.string(reason)),
        ),
    )


def select_parked(group: str) -> exp.Expression:
    """The parked records of a consumer group, in stream order."""
    return (
        exp.select(
            *(col(c) for c in ("topic", "partition", "record_offset", "record_timestamp")),
            col("record_key"),
            col("record_value"),
            col("reason"),
        )
        .from_(control_table(PARKED))
        .where(exp.EQ(this=col("consumer_group"), expression=exp.Literal.string(group)))
        .order_by(col("topic"), col("partition"), col("record_offset"))
    )


def select_schema_logged(source: str, namespace: str, name: str, columns: str) -> exp.Expression:
    """Whether one schema of a table is in the schema log already."""
    return (
        exp.select(exp.Literal.number(1))
        .from_(control_table(SCHEMAS))
        .where(
            exp.and_(
                *(
                    exp.EQ(this=col(c), expression=exp.Literal.string(v))
                    for c, v in (
                        ("source", source),
                        ("source_schema", namespace),
                        ("source_table", name),
                        ("columns", columns),
                    )
                )
            )
        )
    )


def select_registered() -> exp.Select:
    """Every registered source table with its warehouse names (`_cdchub.tables`)."""
    columns = ("source", "source_schema", "source_table", "warehouse_schema", "current_table",
               "history_table")  # fmt: skip
    return exp.select(*(col(c) for c in columns)).from_(control_table(TABLES))


def _table_match(schema: str, history: str) -> exp.Expr:
    return exp.and_(
        exp.EQ(this=col("warehouse_schema"), expression=exp.Literal.string(schema)),
        exp.EQ(this=col("history_table"), expression=exp.Literal.string(history)),
    )


def select_column_types(schema: str, history: str) -> exp.Expression:
    """The recorded source types of one table's warehouse columns."""
    return (
        exp.select(col("column_name"), col("column_type"))
        .from_(control_table(COLUMNS))
        .where(_table_match(schema, history))
    )


def delete_column_types(schema: str, history: str, names: Sequence[str]) -> exp.Expression:
    """Forget the recorded types of some columns (before recording new ones)."""
    return exp.delete(
        control_table(COLUMNS),
        where=exp.and_(
            _table_match(schema, history),
            exp.In(this=col("column_name"), expressions=[exp.Literal.string(n) for n in names]),
        ),
    )
