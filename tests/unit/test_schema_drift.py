"""Schema drift: type families of real PostgreSQL/MariaDB/DuckDB type names, and the check rows."""

from __future__ import annotations

import datetime as dt

import pytest

from ops.checks import check_rows
from ops.schema_drift import TableDrift, compare, type_mismatch


@pytest.mark.parametrize(
    ("source", "warehouse"),
    [
        # What Debezium + cdchub make of the demo's column types: none of them is drift.
        ("bigint", "BIGINT"),
        ("integer", "INTEGER"),
        ("smallint", "SMALLINT"),
        ("numeric", "DECIMAL(12,2)"),
        ("numeric", "VARCHAR"),  # wide decimals fall back to exact text
        ("double precision", "DOUBLE"),
        ("jsonb", "JSON"),
        ("longtext", "JSON"),  # MariaDB reports JSON columns as longtext
        ("uuid", "UUID"),
        ("USER-DEFINED", "VARCHAR"),
        ("ARRAY", "VARCHAR[]"),
        ("timestamp with time zone", "TIMESTAMP WITH TIME ZONE"),
        ("datetime(6)", "TIMESTAMP"),
        ("tinyint(1)", "SMALLINT"),
        ("int(10) unsigned", "BIGINT"),
        ("enum('a','b')", "VARCHAR"),
        ("bytea", "BLOB"),
    ],
)
def test_compatible_types_are_not_drift(source: str, warehouse: str) -> None:
    assert not type_mismatch(source, warehouse)


@pytest.mark.parametrize(
    ("source", "warehouse"),
    [
        ("text", "BIGINT"),  # ALTER COLUMN ... TYPE text at the source
        ("bigint", "INTEGER"),  # widened at the source after the warehouse table was made
        ("int(10) unsigned", "INTEGER"),
        ("timestamp with time zone", "BIGINT"),
        ("bytea", "DATE"),
    ],
)
def test_types_that_cannot_hold_the_values_are_drift(source: str, warehouse: str) -> None:
    assert type_mismatch(source, warehouse)


def test_compare_and_check_rows() -> None:
    missing, mismatched = compare(
        {"id": "bigint", "qty": "bigint", "note": "text"}, {"id": "BIGINT", "qty": "INTEGER"}
    )
    assert missing == ["note"]
    assert mismatched == [{"column": "qty", "source": "bigint", "warehouse": "INTEGER"}]
    report = {
        "checked_at": dt.datetime.now(dt.UTC).isoformat(),
        "tables": [
            {
                "source": "shop",
                "table": "public.orders",
                "source_rows": 1,
                "warehouse_rows": 1,
                "missing_keys": 0,
                "unexpected_keys": 0,
                "different_rows": 0,
                "missing_columns": [],
                "history": {"keys_without_exactly_one_current": 0, "broken_validity_links": 0},
                "error": None,
            }
        ],
    }
    drift = [TableDrift("shop", "public.orders", missing, mismatched)]
    rows = {r[4]: r for r in check_rows(report, "run", drift)}
    assert set(rows) == {"reconciliation", "history.current", "history.links", "schema_drift"}
    assert rows["reconciliation"][5] is True
    assert rows["schema_drift"][5] is False and rows["schema_drift"][6] == 2.0
