"""sqlglot helpers every builder of `merge/` uses: quoted identifiers, table and column references.

Every name that can come from a source schema goes through `ident`, so it is quoted and never re-parsed.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: every name that can come from a source schema is quoted."""
    return exp.to_identifier(name, quoted=True)


def table(name: str, schema: str | None = None) -> exp.Table:
    """A (schema-qualified) table reference."""
    return exp.Table(this=ident(name), db=ident(schema) if schema else None)


def col(name: str, qualifier: str | None = None) -> exp.Column:
    """A (qualified) column reference."""
    return exp.Column(this=ident(name), table=ident(qualifier) if qualifier else None)


def all_of(conditions: Sequence[exp.Expr]) -> exp.Expr:
    """The conjunction of one or more conditions."""
    return exp.and_(*conditions) if len(conditions) > 1 else conditions[0]


def key_match(key: Sequence[str], left: str, right: str) -> exp.Expr:
    """`left.k = right.k` for every key column `k`."""
    return all_of([exp.EQ(this=col(k, left), expression=col(k, right)) for k in key])


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


def insert_rows(tbl: exp.Table, columns: Sequence[str]) -> exp.Expression:
    """`INSERT INTO tbl (cols) VALUES (?, ?, …)`: one parameterised row, for executemany."""
    values = exp.Tuple(expressions=[exp.Placeholder() for _ in columns])
    return exp.insert(
        exp.Values(expressions=[values]),
        tbl,
        columns=[ident(c) for c in columns],
    )
