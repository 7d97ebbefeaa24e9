"""DuckDB, the embedded default warehouse."""

from __future__ import annotations

from typing import ClassVar

from merge.dialects.base import Dialect


class DuckDBDialect(Dialect):
    """DuckDB: native UUID, JSON, lists, microsecond timestamps, DECIMAL up to 38 digits."""

    NAME = "duckdb"
    SQLGLOT_DIALECT = "duckdb"
    MAX_DECIMAL_PRECISION = 38
    FALLBACK_TYPE = "VARCHAR"
    TYPES: ClassVar[dict[str, str]] = {
        "int16": "SMALLINT",
        "int32": "INTEGER",
        "int64": "BIGINT",
        "float32": "REAL",
        "float64": "DOUBLE",
        "boolean": "BOOLEAN",
        "string": "VARCHAR",
        "bytes": "BLOB",
        "date": "DATE",
        "time": "TIME",
        "timestamp": "TIMESTAMP",
        "timestamptz": "TIMESTAMPTZ",
        "json": "JSON",
        "uuid": "UUID",
    }
