"""A random insert/update/delete stream over every table of a loaded sample (for tests and demos).

Generic on purpose: it reads each table's key and column types from information_schema, so it works
on any sample. Each change runs in a savepoint; one the database refuses (a foreign key, a unique
index, a CHECK) is rolled back and counted as refused, so the stream keeps going. Deterministic for a
seed, apart from what the database refuses.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from dbschemas.demo_sources import mariadb_connect, mysql_ident, pg_connect
from infrastructure.stack.layout import StackLayout

TEXT_TYPES = {"text", "character varying", "varchar", "char", "character", "longtext",
              "mediumtext", "tinytext"}  # fmt: skip
NUMBER_TYPES = {
    "integer",
    "smallint",
    "bigint",
    "int",
    "numeric",
    "decimal",
    "tinyint",
    "mediumint",
}


@dataclass(frozen=True)
class TableShape:
    """What the stream needs to know of a table."""

    name: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (name, data_type)


def _shapes(cur: Any, schema: str, placeholder: str) -> list[TableShape]:
    cur.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
        f"AND t.table_name = c.table_name WHERE c.table_schema = {placeholder} "
        "AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position",
        (schema,),
    )
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in cur.fetchall():
        columns.setdefault(table, []).append((column, str(dtype).lower()))
    cur.execute(
        "SELECT k.table_name, k.column_name FROM information_schema.table_constraints t "
        "JOIN information_schema.key_column_usage k ON k.constraint_name = t.constraint_name "
        "AND k.table_schema = t.table_schema AND k.table_name = t.table_name "
        f"WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = {placeholder} "
        "ORDER BY k.table_name, k.ordinal_position",
        (schema,),
    )
    keys: dict[str, list[str]] = {}
    for table, column in cur.fetchall():
        keys.setdefault(table, []).append(column)
    return [TableShape(t, tuple(keys[t]), tuple(cols)) for t, cols in columns.items() if t in keys]


def _cascade_parents(cur: Any, schema: str) -> set[str]:
    """Tables whose deletes cascade (CASCADE / SET NULL) into other tables."""
    cur.execute(
        "SELECT referenced_table_name FROM information_schema.referential_constraints "
        "WHERE constraint_schema = %s AND delete_rule IN ('CASCADE', 'SET NULL')",
        (schema,),
    )
    return {r[0] for r in cur.fetchall()}


def _new_value(rng: random.Random, dtype: str, value: Any) -> Any:
    if dtype in TEXT_TYPES:
        return (value or "")[:8] + rng.choice(["é", "x", "🙂", "'", "", "Ω"])
    if dtype in NUMBER_TYPES:
        return (value or 0) + rng.choice([1, -1])
    return None


def churn(
    layout: StackLayout, kind: str, database: str, changes: int, seed: int = 7
) -> Counter[str]:
    """Run `changes` random single-row changes in small transactions; counts by outcome."""
    rng = random.Random(seed)
    outcome: Counter[str] = Counter()
    if kind == "postgres":
        conn: Any = pg_connect(layout.pg_admin, database)
        schema, ph = "public", "%s"

        def q(*parts: str) -> Any:
            return sql.Identifier(*parts)
    else:
        conn = mariadb_connect(layout.mariadb_admin, database)
        schema, ph = database, "%s"

        def q(*parts: str) -> Any:
            return mysql_ident(parts[-1])

    try:
        cur = conn.cursor()
        shapes = _shapes(cur, schema, ph)
        cascaded = _cascade_parents(cur, schema) if kind != "postgres" else set()
        conn.commit()
        for i in range(changes):
            shape = rng.choice(shapes)
            op = rng.choice(["insert", "update", "update", "delete"])
            if op == "delete" and shape.name in cascaded:
                op = "update"  # InnoDB cascades never reach the binlog (docs/facts.md)
            try:
                cur.execute("SAVEPOINT s")
                done = _one(cur, kind, shape, op, rng, q)
                cur.execute("RELEASE SAVEPOINT s")
                outcome[f"{op}d" if done else f"{op}: no row"] += 1
            except (psycopg.Error, Exception) as exc:  # refused by a constraint: skip this change
                cur.execute("ROLLBACK TO SAVEPOINT s")
                outcome[f"{op} refused ({type(exc).__name__})"] += 1
            if i % 5 == 4:
                conn.commit()
        conn.commit()
    finally:
        conn.close()
    return outcome


def _render(kind: str, text: str, *idents: Any) -> Any:
    if kind == "postgres":
        return sql.SQL(text).format(*idents)
    return text.format(*idents)


def _one(cur: Any, kind: str, shape: TableShape, op: str, rng: random.Random, q: Any) -> bool:
    names = [c for c, _ in shape.columns]
    table = q("public", shape.name) if kind == "postgres" else q(shape.name)
    cols = ", ".join(["{}"] * len(names))
    rand = "random()" if kind == "postgres" else "RAND()"
    cur.execute(
        _render(kind, f"SELECT {cols} FROM {{}} ORDER BY {rand} LIMIT 1", *map(q, names), table)
    )
    row = cur.fetchone()
    if row is None:
        return False
    current = dict(zip(names, row, strict=True))
    where = " AND ".join(["{} = %s"] * len(shape.key))
    key_values = [current[k] for k in shape.key]
    if op == "delete":
        cur.execute(_render(kind, f"DELETE FROM {{}} WHERE {where}", table, *map(q, shape.key)),
                    key_values)  # fmt: skip
        return True
    if op == "update":
        candidates = [(c, t) for c, t in shape.columns if c not in shape.key
                      and _new_value(rng, t, current[c]) is not None]  # fmt: skip
        if not candidates:
            return False
        column, dtype = rng.choice(candidates)
        cur.execute(
            _render(kind, f"UPDATE {{}} SET {{}} = %s WHERE {where}", table, q(column),
                    *map(q, shape.key)),
            [_new_value(rng, dtype, current[column]), *key_values],
        )  # fmt: skip
        return True
    # insert: a copy of the row under a fresh integer key (first key column = max + 1)
    first = shape.key[0]
    if not isinstance(current[first], int):
        return False
    cur.execute(_render(kind, "SELECT max({}) FROM {}", q(first), table))
    current[first] = int(cur.fetchone()[0]) + 1 + rng.randint(0, 3)
    if "uuid" in current:  # Pagila's uuid columns are unique
        current["uuid"] = uuid.UUID(int=rng.getrandbits(128))
    values = ", ".join(["%s"] * len(names))
    cur.execute(_render(kind, f"INSERT INTO {{}} ({cols}) VALUES ({values})", table,
                        *map(q, names)), list(current.values()))  # fmt: skip
    return True
