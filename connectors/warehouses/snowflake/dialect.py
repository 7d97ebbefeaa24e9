"""Snowflake: NUMBER(38), TIMESTAMP_TZ, and DDL that commits the open transaction."""

from __future__ import annotations

from typing import ClassVar

from merge.dialect import Dialect
from merge.scratch import PersistentPerTable


class SnowflakeDialect(Dialect):
    """Snowflake: every integer is NUMBER(38,0), FLOAT is a double, identifiers quoted (case kept).

    JSON and arrays land as VARCHAR holding JSON text: binding a string into a VARIANT needs a
    `PARSE_JSON` step the bulk path does not have yet (docs/warehouses.md).
    """

    NAME = "snowflake"
    OTEL_DB_SYSTEM = "snowflake"
    FOLDS_UNQUOTED_UPPER = True
    # JSON text: binding into a VARIANT needs PARSE_JSON, which the bulk path has not (docs).
    TYPED_ARRAYS = False
    SQLGLOT_DIALECT = "snowflake"
    MAX_DECIMAL_PRECISION = 38
    MAX_IDENTIFIER_LENGTH = 255
    # Snowflake keeps the case of quoted identifiers, but fakesnow (DuckDB underneath) does not:
    # names are kept apart case-insensitively, which is safe on both.
    CASE_INSENSITIVE_IDENTIFIERS = True
    # Snowflake's DDL, CTAS of a temporary table included, commits the open transaction first.
    SCRATCH = PersistentPerTable()
    TRANSACTIONAL_DDL = False
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
