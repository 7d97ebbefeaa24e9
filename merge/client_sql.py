"""Statements the warehouse clients need besides the merge plan: bulk loads and catalog lookups.

They live here, not in the clients, so that clients only bind parameters and every identifier is
quoted by the generator like the rest of the plan.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from merge.sqltree import col, ident, table


def copy_from_stdin(name: str, columns: Sequence[str]) -> exp.Expression:
    """`COPY "name" ("a", "b") FROM STDIN` (PostgreSQL's bulk path, text format)."""
    return exp.Copy(
        this=exp.Schema(this=table(name), expressions=[ident(c) for c in columns]),
        kind=True,
        files=[exp.Var(this="STDIN")],
    )


def _columns_of(schema: str, name: str) -> exp.Select:
    """`FROM information_schema.columns WHERE table_schema = … AND table_name = …` (literals)."""
    return (
        exp.select()
        .from_(exp.Table(this=ident("columns"), db=ident("information_schema")))
        .where(
            exp.and_(
                exp.EQ(this=col("table_schema"), expression=exp.Literal.string(schema)),
                exp.EQ(this=col("table_name"), expression=exp.Literal.string(name)),
            )
        )
    )


def table_columns(schema: str, name: str) -> exp.Select:
    """Column names of a table, in order, from `information_schema` (bound as literals)."""
    return _columns_of(schema, name).select(col("column_name")).order_by(col("ordinal_position"))


def column_types(schema: str, name: str) -> exp.Select:
    """Column names and declared types of a table, from `information_schema`."""
    return _columns_of(schema, name).select(col("column_name"), col("data_type"))


def drop_schema(name: str) -> exp.Expression:
    """`DROP SCHEMA IF EXISTS "name" CASCADE` (benchmarks and tests start from an empty schema)."""
    return exp.Drop(tables=[exp.Table(db=ident(name))], kind="SCHEMA", exists=True, cascade=True)
