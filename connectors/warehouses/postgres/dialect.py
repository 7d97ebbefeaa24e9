"""PostgreSQL as a warehouse: exact numerics, jsonb, uuid, arrays, transactional DDL."""

from __future__ import annotations

from typing import ClassVar

from merge.dialect import Dialect


class PostgresDialect(Dialect):
    """PostgreSQL 13+: NUMERIC up to 1000 digits (and NaN), jsonb, uuid, typed arrays, bytea."""

    NAME = "postgres"
    OTEL_DB_SYSTEM = "postgresql"
    SQLGLOT_DIALECT = "postgres"
    # NUMERIC(p, s) takes p up to 1000; beyond that the unconstrained NUMERIC still holds every digit.
    MAX_DECIMAL_PRECISION = 1000
    MAX_IDENTIFIER_LENGTH = 63
    FALLBACK_TYPE = "TEXT"
    # remove_applied and relink look up history by (key, position); without an index PostgreSQL
    # hash-joins the whole history on every batch.
    INDEXES_HISTORY = True
    # A decimal without a declared precision (Debezium's VariableScaleDecimal, `numeric` with no
    # typmod) goes to the unconstrained NUMERIC, which also stores NaN and ±Infinity exactly.
    UNBOUNDED_DECIMAL_TYPE: ClassVar[str] = "NUMERIC"
    TYPES: ClassVar[dict[str, str]] = {
        "int16": "SMALLINT",
        "int32": "INTEGER",
        "int64": "BIGINT",
        "float32": "REAL",
        "float64": "DOUBLE PRECISION",
        "boolean": "BOOLEAN",
        "string": "TEXT",
        "bytes": "BYTEA",
        "date": "DATE",
        "time": "TIME",
        "timestamp": "TIMESTAMP",
        "timestamptz": "TIMESTAMPTZ",
        "json": "JSONB",
        "uuid": "UUID",
        # PostgreSQL numeric carried as exact text (decimal.handling.mode=string): the unconstrained
        # NUMERIC holds every digit, NaN and ±Infinity.
        "numeric": "NUMERIC",
    }
