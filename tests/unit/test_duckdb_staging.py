"""DuckDB's staging batch (nanoarrow) carries every value exactly.

The oracle is DuckDB itself: each staged value must equal what DuckDB makes of the value's SQL
literal, so the test does not restate the conversion it checks. The full captured type matrix
goes through the real merge in test_types_merge.py.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connectors.warehouses.duckdb.client import DuckDBSession
from core.model import ColumnType, Infinite, OutOfRange

UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))

# (column type, staged values, the SQL literal DuckDB should read for each, as text; None: NULL)
CASES: list[tuple[ColumnType, list[Any], list[str | None]]] = [
    (ColumnType("int16"), [1, None, -32768], ["1", None, "-32768"]),
    (ColumnType("int32"), [2**31 - 1, 0], ["2147483647", "0"]),
    (ColumnType("int64"), [2**63 - 1, None, -(2**63)], [str(2**63 - 1), None, str(-(2**63))]),
    (ColumnType("float64"), [0.1, 3, None, float("inf")], ["0.1", "3", None, "'inf'"]),
    (ColumnType("float32"), [0.1, None], ["0.1::FLOAT", None]),
    (ColumnType("boolean"), [True, None, False], ["true", None, "false"]),
    (ColumnType("string"), ["ü\n'x'", None, ""], ["'ü\n''x'''", None, "''"]),
    (ColumnType("bytes"), [b"\x00\xff", None], ["'\\x00\\xFF'::BLOB", None]),
    (
        ColumnType("decimal", precision=10, scale=7),
        [Decimal("0.0000001"), Decimal("-123.4500000"), None, Decimal("0E-7")],
        ["0.0000001", "-123.4500000", None, "0"],
    ),
    (
        ColumnType("decimal", precision=60, scale=2),
        [Decimal("1" * 58 + ".25")],
        [f"'{'1' * 58}.25'"],
    ),
    (
        ColumnType("date"),
        [
            dt.date(2024, 2, 29),
            None,
            Infinite(),
            Infinite(negative=True),
            OutOfRange("days", -2440588),
        ],
        ["'2024-02-29'", None, "'infinity'", "'-infinity'", "'4714-11-24 (BC)'"],
    ),
    (
        ColumnType("time"),
        [dt.time(23, 59, 59, 999999), None, OutOfRange("time_us", 86_400_000_000)],
        ["'23:59:59.999999'", None, "'24:00:00'"],
    ),
    (
        ColumnType("timestamp"),
        [dt.datetime(1900, 1, 1, 0, 0, 0, 1), None, Infinite()],
        ["'1900-01-01 00:00:00.000001'", None, "'infinity'"],
    ),
    (
        ColumnType("timestamptz"),
        [dt.datetime(2024, 1, 1, 12, tzinfo=UTC), None, dt.datetime(2024, 1, 1, 14, tzinfo=PLUS2)],
        ["'2024-01-01 12:00:00+00'", None, "'2024-01-01 12:00:00+00'"],
    ),
    # Naive and aware values in one column: each converted on its own (a naive one is UTC).
    (
        ColumnType("timestamptz"),
        [dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 1, 12, tzinfo=UTC)],
        ["'2024-01-01 12:00:00+00'", "'2024-01-01 12:00:00+00'"],
    ),
    (
        ColumnType("duration"),
        [dt.timedelta(hours=-838, microseconds=1), None],
        ["INTERVAL '-837:59:59.999999'", None],
    ),
    (
        ColumnType("array", element=ColumnType("int32")),
        [[1, None, 3], None, [], [4]],
        ["[1, NULL, 3]", None, "[]", "[4]"],
    ),
    (
        ColumnType("array", element=ColumnType("date")),
        [[dt.date(2024, 1, 1), Infinite()], None],
        ["['2024-01-01'::DATE, 'infinity'::DATE]", None],
    ),
    (
        ColumnType("array", element=ColumnType("array", element=ColumnType("int32"))),
        [[[1, 2], [3]], None],
        ["'[[1, 2], [3]]'", None],
    ),
    (ColumnType("json"), ['{"a": [1, 2]}', None], ["'{\"a\": [1, 2]}'", None]),
]


@pytest.mark.parametrize(
    ("ctype", "values", "literals"),
    CASES,
    ids=[
        f"{c.kind}{'-' + c.element.kind if c.element else ''}-{i}"
        for i, (c, _, _) in enumerate(CASES)
    ],
)
def test_staged_values_equal_duckdbs_reading_of_their_literals(
    tmp_path: Path, ctype: ColumnType, values: list[Any], literals: list[str | None]
) -> None:
    session = DuckDBSession(tmp_path / "wh.duckdb")
    try:
        with session.transaction():
            session.load_stage(
                "stage",
                [("v", ctype), ("n", ColumnType("int64"))],
                [(v, i) for i, v in enumerate(values)],
            )
            column_type = session.dialect.render(session.dialect.column_type(ctype))
            staged = session.query("SELECT v FROM stage ORDER BY n")
            expected = [
                session.query(
                    f"SELECT CAST({lit if lit is not None else 'NULL'} AS {column_type})"
                )[0]
                for lit in literals
            ]
        assert staged == expected
    finally:
        session.close()


def test_a_batch_of_many_rows_stages_whole(tmp_path: Path) -> None:
    session = DuckDBSession(tmp_path / "wh.duckdb")
    columns = [
        ("id", ColumnType("int64")),
        ("ts", ColumnType("timestamptz")),
        ("d", ColumnType("date")),
    ]
    base = dt.datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        (i, base + dt.timedelta(microseconds=i), None if i % 7 else dt.date(2024, 1, 1))
        for i in range(10_000)
    ]
    try:
        with session.transaction():
            session.load_stage("stage", columns, rows)
            session.load_stage("stage", columns, rows[:5], create=False)
            got = session.query("SELECT count(*), count(d), max(ts) - min(ts), sum(id) FROM stage")
        assert got == [
            (10_005, 1_429 + 1, dt.timedelta(microseconds=9_999), sum(range(10_000)) + 10)
        ]
    finally:
        session.close()


def test_a_value_out_of_its_columns_range_is_refused(tmp_path: Path) -> None:
    session = DuckDBSession(tmp_path / "wh.duckdb")
    try:
        with pytest.raises((ValueError, OverflowError)), session.transaction():
            session.load_stage("stage", [("v", ColumnType("int16"))], [(70_000,)])
    finally:
        session.close()


def test_a_run_does_not_load_pyarrow() -> None:
    """pyarrow's libraries are ~50 MB of resident memory: the modules a `cdchub run` imports, and
    staging a batch, leave it unloaded (it is imported on demand for Parquet and served queries)."""
    code = (
        "import sys, tempfile, pathlib\n"
        "from cdchub.cli.app import main\n"
        "import cdchub.cli.cmd_run, cdc_consumers.runner, ops.service\n"
        "from connectors.warehouses.duckdb.client import DuckDBSession\n"
        "from core.model import ColumnType\n"
        "s = DuckDBSession(pathlib.Path(tempfile.mkdtemp()) / 'w.duckdb')\n"
        "with s.transaction():\n"
        "    s.load_stage('t', [('v', ColumnType('int64'))], [(1,)])\n"
        "print('pyarrow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_duckdb_reads_a_staged_batch_without_pyarrow(tmp_path: Path) -> None:
    """The staged batch is scanned through the Arrow C stream interface, not a pyarrow object."""
    code = (
        "import sys\n"
        "sys.modules['pyarrow'] = None\n"
        "from connectors.warehouses.duckdb.arrow import column_array, record_batch\n"
        "from core.model import ColumnType\n"
        "import duckdb\n"
        "b = record_batch(['v'], [column_array([1, None], ColumnType('int64'))], 2)\n"
        "c = duckdb.connect()\n"
        "c.register('b', b)\n"
        "print(c.execute('SELECT count(v), count(*) FROM b').fetchall())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[(1, 2)]"
    assert duckdb.__version__
