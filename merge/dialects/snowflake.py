"""Snowflake: NUMBER(38), TIMESTAMP_TZ, and DDL that commits the open transaction."""

from __future__ import annotations

from typing import ClassVar

from sqlglot import exp

from core.model import ColumnType
from merge.dialects.base import Dialect
from merge.scratch import PersistentPerTable


class SnowflakeDialect(Dialect):
    """Snowflake: every integer is NUMBER(38,0), FLOAT is a double, identifiers quoted (case kept).

    JSON and arrays land as VARCHAR holding JSON text: binding a string into a VARIANT needs a
    `PARSE_JSON` step the bulk path does not have yet (docs/warehouses.md).
    """

    NAME = "snowflake"
    SQLGLOT_DIALECT = "snowflake"
    MAX_DECIMAL_PRECISION = 38
    MAX_IDENTIFIER_LENGTH = 255
    # Snowflake's DDL, CTAS of a temporary table included, commits the open transaction first.
    SCRATCH = PersistentPerTable()
    FALLBACK_TYPE = "VARCHAR"
    TYPES: ClassVar[dict[str, str]] = {
        "int16": "SMALLINT",
        "int32": "INTEGER",
        "int64": "BIGINT",
        "float32": "FLOAT",
        "float64": "FLOAT",
        "boolean": "BOOLEAN",
        "string": "VARCHAR",
        "bytes": "BINARY",
        "date": "DATE",
        "time": "TIME",
        "timestamp": "TIMESTAMP_NTZ",
        "timestamptz": "TIMESTAMP_TZ",
        "json": "VARCHAR",
        "uuid": "VARCHAR",
    }

    def column_type(self, ctype: ColumnType) -> exp.DataType:
        """As the base, but arrays are JSON text (Snowflake's ARRAY is untyped VARIANT)."""
        if ctype.kind == "array":
            return self.build(self.FALLBACK_TYPE)
        return super().column_type(ctype)
