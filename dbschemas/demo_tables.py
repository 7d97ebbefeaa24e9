"""Source table shapes without a running stack: the demo schemas, or a `--columns` spec.

`cdchub render-sql` needs the columns, their semantic types and the key of one table. The demo
schemas (`dbschemas/`) are parsed with sqlglot; each SQL type is mapped to the kind the decoder
would give its Debezium field (an approximation good enough to read the plan, not a decoder).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp

from core.errors import ConfigError
from core.model import ColumnType, TableId

_DBSCHEMAS = Path(__file__).resolve().parent.parent / "dbschemas"
# (source name, namespace, SQL file, sqlglot dialect) of the demo sources.
DEMO_SOURCES = (
    ("shop", "public", _DBSCHEMAS / "shop" / "postgres.sql", "postgres"),
    ("inventory", "inventory", _DBSCHEMAS / "inventory" / "mariadb.sql", "mysql"),
)
T = exp.DType
_KINDS: dict[exp.DType, str] = {
    T.BIGINT: "int64",
    T.UBIGINT: "decimal",
    T.INT: "int32",
    T.UINT: "int64",
    T.MEDIUMINT: "int32",
    T.UMEDIUMINT: "int32",
    T.SMALLINT: "int16",
    T.USMALLINT: "int32",
    T.TINYINT: "int16",
    T.UTINYINT: "int16",
    T.BOOLEAN: "boolean",
    T.DOUBLE: "float64",
    T.FLOAT: "float32",
    T.DECIMAL: "decimal",
    T.DATE: "date",
    T.TIME: "time",
    T.DATETIME: "timestamp",
    T.DATETIME64: "timestamp",
    T.TIMESTAMP: "timestamp",
    T.TIMESTAMPTZ: "timestamptz",
    T.JSON: "json",
    T.JSONB: "json",
    T.UUID: "uuid",
    T.VARBINARY: "bytes",
    T.BINARY: "bytes",
    T.BLOB: "bytes",
}
_SPEC = re.compile(r"^\s*(\w+)\s*:\s*(\w+)(?:\((\d+)\s*,\s*(\d+)\))?(\[\])?\s*$")


@dataclass(frozen=True)
class TableShape:
    """A source table's id, columns (in order) and primary key."""

    table: TableId
    columns: tuple[tuple[str, ColumnType], ...]
    key: tuple[str, ...]


def column_kind(dtype: exp.DataType, dialect: str) -> ColumnType:
    """The semantic ColumnType the decoder would give a column of this SQL type."""
    if dtype.this == T.ARRAY:
        return ColumnType("array", element=column_kind(dtype.expressions[0], dialect))
    if dtype.this == T.DECIMAL:
        params = [int(p.name) for p in dtype.expressions]
        return ColumnType(
            "decimal",
            precision=params[0] if params else None,
            scale=params[1] if len(params) > 1 else 0,
        )
    if dialect == "mysql" and dtype.this == T.TIMESTAMP:
        return ColumnType("timestamptz")  # MariaDB TIMESTAMP is an instant: ZonedTimestamp
    return ColumnType(_KINDS.get(dtype.this, "string"))


def _shape(create: exp.Create, source: str, namespace: str, dialect: str) -> TableShape:
    schema = create.this
    columns, key = [], []
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            columns.append((item.name, column_kind(item.args["kind"], dialect)))
            if any(isinstance(c.kind, exp.PrimaryKeyColumnConstraint) for c in item.constraints):
                key.append(item.name)
        elif isinstance(item, exp.PrimaryKey):
            key.extend(e.name for e in item.expressions)
    return TableShape(TableId(source, namespace, schema.this.name), tuple(columns), tuple(key))


def demo_tables() -> list[TableShape]:
    """Every table of the demo schemas."""
    shapes = []
    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the PL/pgSQL enum block is parsed as a command, with a warning
    try:
        statements = [
            (source, namespace, dialect, statement)
            for source, namespace, path, dialect in DEMO_SOURCES
            for statement in sqlglot.parse(path.read_text(), read=dialect, error_level=None)
        ]
    finally:
        quiet.setLevel(level)
    for source, namespace, dialect, statement in statements:
        if (
            isinstance(statement, exp.Create)
            and statement.kind == "TABLE"
            and isinstance(statement.this, exp.Schema)
        ):
            shapes.append(_shape(statement, source, namespace, dialect))
    return shapes


def find_demo_table(name: str) -> TableShape:
    """A demo table by `source.namespace.table`, `source.table` (warehouse name) or `table`."""
    for shape in demo_tables():
        t = shape.table
        candidates = {f"{t.source}.{t.namespace}.{t.table}", f"{t.source}.{t.table}", t.table}
        if name in candidates:
            return shape
    known = ", ".join(f"{s.table.source}.{s.table.table}" for s in demo_tables())
    raise ConfigError(f"no demo table {name!r}; give --columns and --key, or one of: {known}")


def parse_columns(table: str, spec: str, key: str) -> TableShape:
    """A table from `--columns "id:int64, price:decimal(12,2), tags:string[]"` and `--key id`."""
    parts = table.split(".")
    if len(parts) == 3:
        table_id = TableId(*parts)
    elif len(parts) == 2:
        table_id = TableId(parts[0], "public", parts[1])
    else:
        raise ConfigError(f"--table {table!r}: write <source>.<namespace>.<table> with --columns")
    columns = []
    for item in re.split(r",(?![^()]*\))", spec):
        match = _SPEC.match(item)
        if not match:
            raise ConfigError(f"--columns: cannot read {item.strip()!r}; write name:kind")
        name, kind, precision, scale, array = match.groups()
        ctype = ColumnType(
            kind,
            precision=int(precision) if precision else None,
            scale=int(scale) if scale else None,
        )
        columns.append((name, ColumnType("array", element=ctype) if array else ctype))
    keys = tuple(k.strip() for k in key.split(",") if k.strip())
    missing = [k for k in keys if k not in dict(columns)]
    if not keys or missing:
        raise ConfigError(f"--key must name columns of --columns (missing: {missing or 'a key'})")
    return TableShape(table_id, tuple(columns), keys)
