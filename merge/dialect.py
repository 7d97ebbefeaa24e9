"""The dialect contract: how a warehouse spells types and renders sqlglot trees."""

from __future__ import annotations

from typing import ClassVar

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from core.model import ColumnType
from merge.batch_plan import ScratchStrategy
from merge.scratch import TempPerSegment


class Dialect:
    """Warehouse differences as data: flags and a type map, plus small overrides.

    Subclasses set `SQLGLOT_DIALECT` and `TYPES`; a type missing from the map (or a decimal wider than
    `MAX_DECIMAL_PRECISION`) falls back to `FALLBACK_TYPE`, a text type that holds the value exactly.
    """

    NAME: ClassVar[str] = "base"
    # True where unquoted identifiers fold to upper case (Snowflake): the hub's tables have quoted
    # lower-case names, so user SQL is re-rendered with every identifier quoted.
    FOLDS_UNQUOTED_UPPER: ClassVar[bool] = False
    # OpenTelemetry's registered `db.system.name` of the warehouse (its traces name it).
    OTEL_DB_SYSTEM: ClassVar[str] = ""
    SQLGLOT_DIALECT: ClassVar[str] = ""
    MAX_DECIMAL_PRECISION: ClassVar[int] = 38
    # Longest identifier in bytes (None: no limit); longer table names get a hashed short form.
    MAX_IDENTIFIER_LENGTH: ClassVar[int | None] = 63
    # Whether two quoted identifiers differing only in case name one object.
    CASE_INSENSITIVE_IDENTIFIERS: ClassVar[bool] = False
    # Where segments are staged (`merge.scratch`): temporary tables per segment, unless DDL
    # commits the open transaction (Snowflake), which needs tables made before it.
    SCRATCH: ClassVar[ScratchStrategy] = TempPerSegment()
    # True where history needs a btree on (key, position) for the merge's probes to stay cheap.
    INDEXES_HISTORY: ClassVar[bool] = False
    # Whether DDL joins the open transaction (False: it commits it, as on Snowflake).
    TRANSACTIONAL_DDL: ClassVar[bool] = True
    FALLBACK_TYPE: ClassVar[str] = "TEXT"
    # The type of a decimal without a precision or wider than MAX_DECIMAL_PRECISION (None: the text
    # fallback; PostgreSQL's unconstrained NUMERIC holds every digit).
    UNBOUNDED_DECIMAL_TYPE: ClassVar[str | None] = None
    # False where the warehouse has no typed array (Snowflake's ARRAY is an untyped VARIANT): arrays
    # are then JSON text in the fallback type.
    TYPED_ARRAYS: ClassVar[bool] = True
    TYPES: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        # id(tree) -> (tree, SQL): a tree rendered again (a reused plan's statement) is not
        # rendered anew. The tree is held, so its id cannot be reused while it is here; trees are
        # never changed once built (every builder makes new ones).
        self._rendered: dict[int, tuple[exp.Expression, str]] = {}

    def fold(self, name: str) -> str:
        """`name` as the warehouse compares identifiers: equal folds are one object."""
        return name.lower() if self.CASE_INSENSITIVE_IDENTIFIERS else name

    def column_type(self, ctype: ColumnType) -> exp.DataType:
        """The warehouse type that holds every value of `ctype` exactly."""
        if ctype.kind == "decimal":
            if ctype.precision is None or ctype.precision > self.MAX_DECIMAL_PRECISION:
                return self.build(self.UNBOUNDED_DECIMAL_TYPE or self.FALLBACK_TYPE)
            return self.build(f"DECIMAL({ctype.precision}, {ctype.scale or 0})")
        if ctype.kind == "array":
            assert ctype.element is not None
            if not self.TYPED_ARRAYS or ctype.element.kind == "array":
                return self.build(self.FALLBACK_TYPE)
            return exp.DataType(
                this=exp.DataType.Type.ARRAY,
                expressions=[self.column_type(ctype.element)],
                nested=True,
            )
        return self.build(self.TYPES.get(ctype.kind, self.FALLBACK_TYPE))

    def build(self, type_sql: str) -> exp.DataType:
        """Parse a type spelt in this dialect."""
        return exp.DataType.build(type_sql, dialect=self.SQLGLOT_DIALECT)

    def render(self, expression: exp.Expression, *, pretty: bool = False) -> str:
        """Render a tree; a construct the dialect cannot express raises here, not in production."""
        if not pretty:
            found = self._rendered.get(id(expression))
            if found is not None and found[0] is expression:
                return found[1]
        sql = expression.sql(
            dialect=self.SQLGLOT_DIALECT,
            unsupported_level=ErrorLevel.RAISE,
            identify=True,
            pretty=pretty,
        )
        if not pretty:
            if len(self._rendered) >= 2048:
                self._rendered.clear()
            self._rendered[id(expression)] = (expression, sql)
        return sql

    def parse(self, sql: str) -> exp.Expr:
        """Parse SQL written in this dialect (used for golden tests and `render-sql`)."""
        return sqlglot.parse_one(sql, read=self.SQLGLOT_DIALECT)
