"""DDL builders: schemas, tables in the dialect's exact types, added or widened columns, the history index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from core.model import ColumnType
from merge.naming import SOURCE_POS, fit_identifier
from merge.shapes import MergeTarget
from merge.sqltree import col, ident

if TYPE_CHECKING:
    from merge.dialect import Dialect


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
