"""SQL over history without servers: the read-only gate, the as-of rewrite (DuckDB, Snowflake on
fakesnow, PostgreSQL rendering), the output formats, `cdchub asof`/`sql` as a user runs them, the
ready-made views and `cdchub dbt-sources`.

The oracle for as-of answers is the reference SCD2 model (tests/unit/scd2_reference.py) fed the same
random source stream the engine applied: the rows valid at T there, never the query under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlglot
import yaml
from click.testing import CliRunner
from sqlglot import exp

from cdchub.analytics import create_views, dbt_sources
from cdchub.cli import cli
from cdchub.query import QueryFailed, run_sql
from cdchub.tabular import arrow_table, render_text
from core.config import load_config
from merge.asof import AsOfTarget, QueryRefused, read_only_query, rewrite_as_of
from merge.ledger import Checkpoint
from merge.naming import TableNames
from merge.scd2 import Scd2Engine
from merge.session import WarehouseSession
from ops.catalog import replicated_tables
from tests.scd2_cases import INFO, T0, TABLE, deliveries, source_stream
from tests.unit.scd2_reference import reference_history
from tests.unit.warehouses import duckdb_session, snowflake_session

SEED, LENGTH = 11, 70
NAMES = TableNames("src", "items", "items_history")


def _events() -> list[Any]:
    return source_stream(random.Random(SEED), LENGTH)


def _fill(session: WarehouseSession) -> list[Any]:
    """Apply the random stream (badly delivered) and return the events."""
    rng = random.Random(SEED)
    events = source_stream(rng, LENGTH)
    batches = deliveries(rng, events)
    ordered = sorted((e for b in batches for e in b), key=lambda e: e.position)
    engine = Scd2Engine(session, "g")
    for offset in range(0, len(ordered), 10):
        engine.apply({TABLE: ordered[offset : offset + 10]}, INFO, [Checkpoint("t", 0, offset)])
    return events


def expected_as_of(events: list[Any], at: dt.datetime) -> list[tuple[int, Any, Any]]:
    """(id, name, qty) valid at `at` in the reference model's history."""
    rows = []
    for r in reference_history(events):
        key, name, qty, valid_from, valid_to, _current, deleted = r[:7]
        if valid_from <= at and (valid_to is None or valid_to > at) and not deleted:
            rows.append((int(key[0]), name, qty))
    return sorted(rows)


def instants(events: list[Any]) -> list[dt.datetime]:
    """Instants across the stream: before it, on commit times, between them, after it."""
    times = sorted({e.commit_time for e in events})
    picks = [T0 - dt.timedelta(seconds=5), times[len(times) // 3], times[-1]]
    picks += [times[len(times) // 2] + dt.timedelta(milliseconds=500)]
    return [*picks, times[-1] + dt.timedelta(hours=1)]


@pytest.fixture(params=["duckdb", "snowflake"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WarehouseSession]:
    opener = duckdb_session if request.param == "duckdb" else snowflake_session
    with opener(tmp_path / "wh") as session:
        yield session


# -- the read-only gate --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM src.items",
        "UPDATE src.items SET qty = 0",
        "INSERT INTO src.items VALUES (1, 'a', 1)",
        "DROP TABLE src.items",
        "CREATE TABLE x AS SELECT 1",
        "SELECT 1; DROP TABLE src.items",
        "WITH gone AS (DELETE FROM src.items RETURNING *) SELECT * FROM gone",
        "SELECT * INTO copy_of_items FROM src.items",
        "COPY src.items TO '/tmp/x.csv'",
        "ATTACH 'other.duckdb'",
        "SET memory_limit = '1GB'",
        "SELEC 1",
        "",
    ],
)
@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "snowflake"])
def test_anything_but_one_select_is_refused(sql: str, dialect: str) -> None:
    with pytest.raises(QueryRefused):
        read_only_query(sql, dialect)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
        "SELECT 1 UNION ALL SELECT 2",
        "SELECT status, count(*) FROM shop.orders GROUP BY status",
    ],
)
def test_selects_pass_the_gate(sql: str) -> None:
    assert isinstance(read_only_query(sql, "postgres"), exp.Query)


# -- the rewrite ---------------------------------------------------------------------------------

TARGET = AsOfTarget(NAMES, ("id", "name", "qty", "_cdc_valid_from"))
AT = dt.datetime(2026, 1, 1, 0, 0, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "snowflake"])
def test_rewrite_reads_history_for_every_reference_in_each_dialect(dialect: str) -> None:
    query = read_only_query(
        "WITH live AS (SELECT i.id FROM src.items AS i WHERE i.qty > 0) "
        "SELECT src.items.name, live.id FROM src.items JOIN live ON live.id = src.items.id "
        "WHERE src.items.id IN (SELECT id FROM src.items_history)",
        dialect,
    )
    rewritten, hits = rewrite_as_of(query, [TARGET], AT)
    assert hits == [NAMES, NAMES]
    rendered = rewritten.sql(dialect=dialect)
    again = sqlglot.parse_one(rendered, read=dialect)  # renders to SQL the dialect parses back
    tables = [t for t in again.find_all(exp.Table)]
    # Every read of the current table is now a read of the history table; the explicit history
    # reference the user wrote stays as it was.
    assert {(t.db, t.name) for t in tables} == {("src", "items_history"), ("", "live")}
    subqueries = [s for s in again.find_all(exp.Subquery) if s.alias in ("i", "items")]
    assert sorted(s.alias for s in subqueries) == ["i", "items"]
    for sub in subqueries:
        where = sub.this.args["where"].sql(dialect=dialect)
        assert "_cdc_valid_from" in where and "_cdc_valid_to" in where
        assert "_cdc_is_deleted" in where and "2026-01-01 00:00:30" in where
    # A column named through the full path now names the subquery.
    assert all(c.args.get("db") is None for c in again.find_all(exp.Column))


def test_postgres_rendering_is_valid_postgres() -> None:
    query = read_only_query("SELECT count(*) FROM src.items", "postgres")
    rewritten, _ = rewrite_as_of(query, [TARGET], AT)
    sql = rewritten.sql(dialect="postgres")
    assert 'FROM "src"."items_history"' in sql
    assert "CAST('2026-01-01 00:00:30.000000+00:00' AS TIMESTAMPTZ)" in sql
    assert 'NOT "_cdc_is_deleted"' in sql


def test_unqualified_names_and_other_tables_are_left_alone() -> None:
    query = read_only_query("SELECT * FROM items, other.items, src.items_history", "duckdb")
    rewritten, hits = rewrite_as_of(query, [TARGET], AT)
    assert hits == [] and rewritten.sql() == query.sql()


def test_as_of_answers_equal_the_reference_model(warehouse: WarehouseSession) -> None:
    events = _fill(warehouse)
    for at in instants(events):
        result = run_sql(warehouse, "SELECT id, name, qty FROM src.items ORDER BY id", at)
        got = [(int(r[0]), r[1], r[2]) for r in result.rows]
        assert got == expected_as_of(events, at), at
    # Now (no --as-of) the same text reads the current table.
    now = run_sql(warehouse, "SELECT id, name, qty FROM src.items ORDER BY id")
    latest = expected_as_of(events, dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
    assert [(int(r[0]), r[1], r[2]) for r in now.rows] == latest


def test_joins_and_aliases_read_the_same_instant(warehouse: WarehouseSession) -> None:
    events = _fill(warehouse)
    at = instants(events)[1]
    result = run_sql(
        warehouse,
        "SELECT a.id, b.qty FROM src.items AS a JOIN src.items AS b ON a.id = b.id ORDER BY a.id",
        at,
    )
    assert [(int(r[0]), r[1]) for r in result.rows] == [
        (i, q) for i, _n, q in expected_as_of(events, at)
    ]


def test_star_as_of_has_the_current_tables_columns(warehouse: WarehouseSession) -> None:
    _fill(warehouse)
    now = run_sql(warehouse, "SELECT * FROM src.items")
    then = run_sql(warehouse, "SELECT * FROM src.items", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert [c.lower() for c in then.columns] == [c.lower() for c in now.columns]


def test_a_time_before_history_warns(warehouse: WarehouseSession) -> None:
    events = _fill(warehouse)
    warnings: list[str] = []
    result = run_sql(warehouse, "SELECT * FROM src.items", instants(events)[0], warnings.append)
    assert result.rows == []
    assert len(warnings) == 1 and "before src.items's history begins" in warnings[0]


def test_a_bad_column_is_a_query_error(warehouse: WarehouseSession) -> None:
    _fill(warehouse)
    with pytest.raises(QueryFailed, match="refused the query"):
        run_sql(warehouse, "SELECT no_such_column FROM src.items")


# -- formats ----------------------------------------------------------------------------------

COLUMNS = ["id", "note", "price", "at", "tags"]
ROWS = [
    (1, 'two\nlines, a comma and a "quote"', __import__("decimal").Decimal("12.50"), AT, ["a"]),
    (2, None, __import__("decimal").Decimal("0.01"), None, []),
]


def test_csv_and_tsv_keep_a_multiline_value_in_one_record() -> None:
    for fmt, delimiter in (("csv", ","), ("tsv", "\t")):
        text = render_text(fmt, COLUMNS, ROWS)
        records = list(csv.reader(io.StringIO(text), delimiter=delimiter))
        assert len(records) == 3
        assert records[1][1] == ROWS[0][1]
        assert records[2][1] == "" and records[1][3] == AT.isoformat()


def test_json_is_one_document() -> None:
    doc = json.loads(render_text("json", COLUMNS, ROWS))
    assert isinstance(doc, list) and len(doc) == 2
    assert doc[0]["note"] == ROWS[0][1] and doc[0]["price"] == "12.50"
    assert doc[1]["note"] is None and doc[0]["tags"] == ["a"]


def test_parquet_keeps_types(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    pq.write_table(arrow_table(COLUMNS, ROWS), path)
    back = pq.read_table(path)
    assert back.column("price").to_pylist() == [ROWS[0][2], ROWS[1][2]]
    assert back.column("at").to_pylist()[0] == AT
    assert back.column("note").to_pylist() == [ROWS[0][1], None]


# -- the CLI as a user runs it --------------------------------------------------------------------


@pytest.fixture
def demo_config(tmp_path: Path) -> Iterator[tuple[Path, list[Any]]]:
    path = tmp_path / "warehouse.duckdb"
    with duckdb_session(path) as session:
        events = _fill(session)
        for name in ("items", "items_history"):  # a value with a line break, as `notes` has
            session.execute(
                exp.update(
                    exp.table_(name, db="src"),
                    {"name": exp.Literal.string("line one\nline two")},
                    where="id = (SELECT min(id) FROM src.items)",
                )
            )
    config = tmp_path / "cdchub.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "warehouse": {"kind": "duckdb", "path": str(path)},
                "observability": {"freshness_slo_s": 90},
            }
        )
    )
    yield config, events


def _cli(config: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def test_cli_sql_as_of_in_each_format(demo_config: tuple[Path, list[Any]], tmp_path: Path) -> None:
    config, events = demo_config
    at = instants(events)[1]
    query = "SELECT id, name, qty FROM src.items ORDER BY id"
    expected = expected_as_of(events, at)
    out = _cli(config, "sql", query, "--as-of", at.isoformat(), "--format", "json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert [(r["id"], r["name"], r["qty"]) for r in doc] == expected
    out = _cli(config, "sql", query, "--as-of", at.isoformat(), "--format", "csv")
    assert list(csv.reader(io.StringIO(out.stdout)))[1:] == [
        [str(i), n or "", "" if q is None else str(q)] for i, n, q in expected
    ]
    parquet = tmp_path / "items.parquet"
    args = ["--as-of", at.isoformat(), "--output", str(parquet), "--format", "parquet"]
    out = _cli(config, "sql", query, *args)
    assert out.exit_code == 0, out.output
    assert pq.read_table(parquet).column("id").to_pylist() == [r[0] for r in expected]
    out = _cli(config, "sql", query, "--format", "table")
    assert out.exit_code == 0 and "line one" in out.stdout
    # --show-sql: the query as sent, on stderr, reading src.items_history (the as-of rewrite).
    out = _cli(config, "sql", query, "--as-of", at.isoformat(), "--format", "json", "--show-sql")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == doc
    assert "items_history" in out.stderr and "items_history" not in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sql", "DELETE FROM src.items"], "not DELETE"),
        (["sql", "SELECT 1", "--as-of", "yesterday-ish"], "is not an instant"),
        (["sql", "SELECT 1", "--format", "parquet"], "needs --output"),
        (["asof", "src.items", "--at", "now", "--limit", "-1"], "-1 is not in the range"),
        (["asof", "src.nope", "--at", "now"], "no replicated table"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    demo_config: tuple[Path, list[Any]], args: list[str], message: str
) -> None:
    config, _ = demo_config
    out = _cli(config, *args)
    assert out.exit_code == 2, out.output
    assert message in out.stderr
    assert "Traceback" not in out.output


def test_cli_asof_fixes(demo_config: tuple[Path, list[Any]]) -> None:
    config, events = demo_config
    # `now`, and --json as one document (the first row's name holds a line break).
    out = _cli(config, "asof", "src.items", "--at", "now", "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert any(r["name"] == "line one\nline two" for r in doc)
    # Text output is CSV when piped: one record per row even with the line break.
    out = _cli(config, "asof", "src.items", "--at", "now")
    records = list(csv.reader(io.StringIO(out.stdout)))
    assert len(records) == len(doc) + 1
    out = _cli(config, "asof", "src.items", "--at", "now", "--limit", "1", "--format", "tsv")
    assert len(list(csv.reader(io.StringIO(out.stdout), delimiter="\t"))) == 2
    out = _cli(config, "asof", "src.items", "--at", "now", "--limit", "0", "--json")
    assert json.loads(out.stdout) == []
    # Before history begins: no rows, and a warning on stderr.
    before = instants(events)[0].isoformat()
    out = _cli(config, "asof", "src.items", "--at", before, "--json")
    assert out.exit_code == 0 and json.loads(out.stdout) == []
    assert "before src.items's history begins" in out.stderr


def test_cli_views_and_dbt_sources(demo_config: tuple[Path, list[Any]]) -> None:
    config, _events = demo_config
    out = _cli(config, "views")
    assert out.exit_code == 0, out.output
    assert out.stdout.split() == ["src.items_versions", "src.items_changes"]
    out = _cli(config, "dbt-sources")
    doc = yaml.safe_load(out.stdout)
    (source,) = doc["sources"]
    assert source["schema"] == "src" and source["database"] == "warehouse"
    history = next(t for t in source["tables"] if t["name"] == "items_history")
    assert history["freshness"]["warn_after"] == {"count": 2, "period": "minute"}
    assert history["freshness"]["error_after"] == {"count": 4, "period": "minute"}
    assert history["loaded_at_field"] == "_cdc_valid_from"
    # --output writes the same document to a file; `views --drop` removes the views again.
    target = config.parent / "models" / "sources.yml"
    target.parent.mkdir()
    out = _cli(config, "dbt-sources", "--output", str(target))
    assert out.exit_code == 0, out.output
    assert yaml.safe_load(target.read_text()) == doc
    out = _cli(config, "views", "--drop")
    assert out.exit_code == 0, out.output
    assert out.stdout.split() == ["src.items_versions", "src.items_changes"]
    out = _cli(config, "sql", "SELECT count(*) AS n FROM src.items_versions")
    assert out.exit_code == 2 and "items_versions" in out.stderr


# -- views ----------------------------------------------------------------------------------------


def test_views_answer_versions_per_key_and_changes(warehouse: WarehouseSession) -> None:
    events = _fill(warehouse)
    names = create_views(warehouse)
    assert names == ["src.items_versions", "src.items_changes"]
    reference = reference_history(events)
    per_key: dict[int, int] = {}
    for r in reference:
        per_key[int(r[0][0])] = per_key.get(int(r[0][0]), 0) + 1
    got = run_sql(
        warehouse,
        "SELECT id, max(_cdc_version), max(_cdc_versions), count(*) FROM src.items_versions "
        "GROUP BY id ORDER BY id",
    )
    assert [(int(r[0]), r[1], r[2], r[3]) for r in got.rows] == [
        (k, n, n, n) for k, n in sorted(per_key.items())
    ]
    # Changes of `name`: each version whose name differs from the version before it, per key.
    expected = []
    last: dict[int, Any] = {}
    for r in reference:
        key, name, deleted = int(r[0][0]), r[1], r[6]
        first = key not in last
        if first or deleted or name != last[key]:
            expected.append((key, None if first else last[key], None if deleted else name))
        last[key] = name
    changes = run_sql(
        warehouse,
        "SELECT id, old_value, new_value FROM src.items_changes WHERE column_name = 'name' "
        "ORDER BY id, _cdc_valid_from",
    )
    assert Counter((int(r[0]), r[1], r[2]) for r in changes.rows) == Counter(expected)
    assert create_views(warehouse, drop=True) == names
    assert replicated_tables(warehouse)


def test_dbt_sources_without_slo_disables_freshness(tmp_path: Path) -> None:
    config_path = tmp_path / "cdchub.yaml"
    config_path.write_text(yaml.safe_dump({"warehouse": {"kind": "duckdb"}}))
    config = load_config(config_path)
    from ops.catalog import ReplicatedTable

    table = ReplicatedTable("shop", "postgres", "shop", "public", "orders", "shop", "orders",
                            "orders_history", ["order_id"])  # fmt: skip
    doc = dbt_sources(config, [table])
    tables = doc["sources"][0]["tables"]
    assert [t["name"] for t in tables] == ["orders", "orders_history"]
    assert tables[1]["freshness"] is None
    assert tables[0]["columns"] == [{"name": "order_id", "data_tests": ["not_null"]}]


def test_cli_sql_from_a_file_or_after_double_dash(
    demo_config: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    config, events = demo_config
    query = "-- a comment first, as in docs/analytics.md\nSELECT count(*) AS n FROM src.items"
    expected = len(expected_as_of(events, dt.datetime(2100, 1, 1, tzinfo=dt.UTC)))
    file = tmp_path / "q.sql"
    file.write_text(query)
    for args in (["--file", str(file)], ["--", query]):
        out = _cli(config, "sql", "--format", "json", *args)
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout) == [{"n": expected}]
    out = CliRunner().invoke(cli, ["--config", str(config), "sql", "--file", "-", "--format",
                                   "csv"], input=query)  # fmt: skip
    assert out.exit_code == 0 and out.stdout.splitlines() == ["n", str(expected)]
    out = _cli(config, "sql")
    assert out.exit_code == 2 and "give the query" in out.stderr
