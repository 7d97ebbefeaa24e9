"""DuckDB, the embedded default warehouse."""

from __future__ import annotations

from typing import ClassVar

from merge.dialect import Dialect


class DuckDBDialect(Dialect):
    """DuckDB: native UUID, JSON, lists, microsecond timestamps, DECIMAL up to 38 digits."""

    NAME = "duckdb"
    OTEL_DB_SYSTEM = "duckdb"
    SQLGLOT_DIALECT = "duckdb"
    MAX_DECIMAL_PRECISION = 38
    MAX_IDENTIFIER_LENGTH = None
    # Quoted or not, "Orders" and orders are one table.
    CASE_INSENSITIVE_IDENTIFIERS = True
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
        # Lossless homes for values DuckDB has no exact native type for (docs/types.md):
        "numeric": "VARCHAR",  # PostgreSQL numeric: canonical digits, or NaN / ±Infinity
        "timetz": "VARCHAR",  # UTC time of day as Debezium sends it (the offset is already gone)
        "interval": "VARCHAR",  # ISO-8601; DuckDB INTERVAL would normalise months/days/µs
        "bits": "VARCHAR",  # '1010…'
        "point": "VARCHAR",  # PostgreSQL point text '(x,y)'
        "duration": "INTERVAL",  # MySQL TIME, up to ±838:59:59
        "geometry": "BLOB",  # MySQL internal format: 4-byte SRID + WKB
    }
