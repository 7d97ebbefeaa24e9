"""The shape of one merge: `MergeTarget` (a table pair and its source columns) and the staging layout.

A segment of changes is staged in a scratch table with the source columns plus the `STAGE_META`
columns; the history and current tables hold the source columns plus their `_cdc_` metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from sqlglot import exp

from core.model import ColumnType
from merge.naming import (
    CURRENT_META,
    HISTORY_META,
    IS_DELETED,
    OP,
    SOURCE_POS,
    TX_ID,
    VALID_FROM,
    TableNames,
)
from merge.sqltree import col, ident, table

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


def history_columns(target: MergeTarget) -> list[tuple[str, ColumnType]]:
    """Columns of the history table: source columns, then the `_cdc_` metadata."""
    return [*target.columns, *((n, meta_type(k)) for n, k in HISTORY_META)]


def current_columns(target: MergeTarget) -> list[tuple[str, ColumnType]]:
    """Columns of the current table: source columns, then a few `_cdc_` columns."""
    return [*target.columns, *((n, meta_type(k)) for n, k in CURRENT_META)]


def key_columns(target: MergeTarget) -> list[tuple[str, ColumnType]]:
    """The key columns with their types (the key table's columns)."""
    types = dict(target.columns)
    return [(k, types[k]) for k in target.key]


def unavailable_marker(target: MergeTarget, columns: Sequence[str]) -> str | None:
    """The staged marker value for a change that did not carry `columns` (None: it carried all)."""
    if not columns:
        return None
    names = target.column_names
    return "," + ",".join(str(names.index(c)) for c in sorted(columns, key=names.index)) + ","


class StagedRows(Sequence[tuple[Any, ...]]):
    """The rows of a stage, held as its columns (one sequence per stage column, in order).

    The merge builds a stage column by column, with C loops over the batch's events; a client that
    loads columns (DuckDB, through Arrow) takes `columns` as they are, one that writes rows
    (PostgreSQL's COPY, Snowflake's binds) iterates the rows.
    """

    __slots__ = ("columns", "length")

    def __init__(self, columns: Sequence[Sequence[Any]], length: int) -> None:
        self.columns = tuple(columns)
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return zip(*self.columns, strict=True) if self.columns else iter([()] * self.length)

    @overload
    def __getitem__(self, index: int) -> tuple[Any, ...]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[Any, ...]]: ...
    def __getitem__(self, index: int | slice) -> tuple[Any, ...] | list[tuple[Any, ...]]:
        if isinstance(index, slice):
            return list(zip(*(c[index] for c in self.columns), strict=True))
        return tuple(c[index] for c in self.columns)
