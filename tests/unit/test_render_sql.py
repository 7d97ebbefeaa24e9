"""`cdchub render-sql` prints the `BatchPlan` the engine runs: golden plans per dialect, every demo
table on every warehouse, and a recording session that checks the engine executes that plan.

Regenerate the golden files after an intended plan change with `CDCHUB_UPDATE_GOLDEN=1 pytest …`
and review the diff: it is the SQL every warehouse will run.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from click.testing import CliRunner
from sqlglot import exp

from cdchub.cli import cli
from cdchub.render_sql import render_plan
from core.model import ChangeEvent, Column, ColumnType, Op, TableId, TableSchema
from dbschemas.demo_tables import demo_tables, parse_columns
from merge import shapes, sqltree
from merge.batch_plan import SegmentSpec, StepKind, plan_table_batch
from merge.naming import table_names
from merge.scd2 import Scd2Engine
from merge.schema_sync import TableInfo
from merge.session import WarehouseSession
from tests.unit.warehouses import duckdb_session, snowflake_session

KINDS = ["duckdb", "postgres", "snowflake"]
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("kind", KINDS)
def test_every_demo_table_renders_and_parses_back(kind: str) -> None:
    for shape in demo_tables():
        text = render_plan(kind, shape)
        read = "postgres" if kind == "postgres" else kind
        statements = [s for s in sqlglot.parse(text, read=read) if s is not None]
        labels = [line.split(":")[0] for line in text.splitlines() if line.startswith("-- ")]
        # Two segments (changes, then a truncate), each fully merged, plus BEGIN/COMMIT.
        assert labels.count("-- relink") == labels.count("-- insert_versions") == 2, shape.table
        assert labels.count("-- stage_truncate") == 1, shape.table
        has_values = len(shape.columns) > len(shape.key)
        assert ("-- carry_unavailable" in labels) == has_values, shape.table
        assert isinstance(statements[-1], exp.Commit), shape.table


@pytest.mark.parametrize("kind", KINDS)
def test_golden_plan(kind: str) -> None:
    shape = parse_columns("src.public.items", "id:int64, name:string, price:decimal(12,2)", "id")
    text = render_plan(kind, shape) + "\n"
    path = GOLDEN / f"items.{kind}.sql"
    if os.environ.get("CDCHUB_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


class RecordingSession:
    """Delegates to a real session and records every statement it is asked to run, in order."""

    def __init__(self, inner: WarehouseSession) -> None:
        self.inner = inner
        self.dialect = inner.dialect
        self.statements: list[exp.Expression] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def execute(self, statement: exp.Expression, params: dict[str, Any] | None = None) -> None:
        self.statements.append(statement)
        self.inner.execute(statement, params)

    def execute_all(self, statements: Sequence[exp.Expression]) -> None:
        self.statements.extend(statements)
        self.inner.execute_all(statements)

    def query(self, statement: exp.Expression) -> list[tuple[Any, ...]]:
        self.statements.append(statement)
        return self.inner.query(statement)

    def executemany(self, statement: exp.Expression, rows: Sequence[Sequence[Any]]) -> None:
        self.statements.append(statement)
        self.inner.executemany(statement, rows)


TABLE = TableId("src", "public", "items")
SCHEMA = TableSchema(
    (Column("id", ColumnType("int64"), False), Column("name", ColumnType("string"))), ("id",)
)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _event(
    op: Op, pos: str, name: str | None, unavailable: frozenset[str] = frozenset()
) -> ChangeEvent:
    after = None if op is Op.TRUNCATE else {"id": 1, "name": name}
    key = () if op is Op.TRUNCATE else (1,)
    return ChangeEvent(TABLE, op, key, None, after, pos, T0, "tx", SCHEMA, unavailable=unavailable)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("opener", [duckdb_session, snowflake_session], ids=["duckdb", "snowflake"])
def test_the_engine_executes_the_plan_render_sql_prints(opener: Any, tmp_path: Path) -> None:
    events = [
        _event(Op.CREATE, "1", "a"),
        _event(Op.UPDATE, "2", None, frozenset({"name"})),  # unchanged TOAST: carried forward
        _event(Op.TRUNCATE, "3", None),
        _event(Op.CREATE, "4", "b"),
    ]
    with opener(tmp_path / "w") as inner:
        session = RecordingSession(inner)
        engine = Scd2Engine(session, "g")  # type: ignore[arg-type]
        engine.apply({TABLE: events}, {TABLE: TableInfo("postgres", "db", "public")}, [])
        dialect = inner.dialect
        names = table_names(TABLE, "public")
        target = shapes.MergeTarget(
            names, (("id", ColumnType("int64")), ("name", ColumnType("string"))), ("id",)
        )
        segments = [
            SegmentSpec(unavailable=("name",)),
            SegmentSpec(truncate=("3", T0, "tx")),
            SegmentSpec(),
        ]
        expected = plan_table_batch(target, segments, dialect.SCRATCH, dialect)
        steps = [s for s in expected.steps if s.kind is not StepKind.LOAD]
        assert [s.label for s in steps].count("carry_unavailable") == 1
        ran = [dialect.render(s) for s in session.statements]
        want = [dialect.render(s.statement) for s in steps if s.statement is not None]
        # The plan's statements run in order and nothing else in between (the clients' bulk loads
        # run on the inner session and are not recorded).
        start = ran.index(want[0])
        assert ran[start : start + len(want)] == want
        history = session.query(
            exp.select(sqltree.col("name"), sqltree.col("_cdc_op"))
            .from_(target.history)
            .order_by(sqltree.col("_cdc_source_pos"))
        )
        assert [tuple(r) for r in history] == [("a", "c"), ("a", "u"), ("a", "t"), ("b", "c")]


def test_cli_renders_a_demo_table_for_snowflake() -> None:
    result = CliRunner().invoke(
        cli, ["render-sql", "--warehouse", "snowflake", "--table", "orders"]
    )
    assert result.exit_code == 0, result.output
    assert 'UPDATE "shop"."orders_history"' in result.output
    assert "TIMESTAMP_TZ" in result.output or "TIMESTAMPTZ" in result.output


def test_cli_unknown_table_is_one_line_error() -> None:
    result = CliRunner().invoke(cli, ["render-sql", "--table", "nope"])
    assert result.exit_code == 2
    assert "no demo table 'nope'" in result.output


def test_the_readme_examples_run_as_written() -> None:
    """The `cdchub render-sql` lines of README.md, as a user pastes them."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    lines = readme.replace("\\\n", " ").splitlines()
    examples = [shlex.split(x)[1:] for x in lines if x.startswith(".venv/bin/cdchub render-sql")]
    assert len(examples) == 2, examples
    for args in examples:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
        kind = args[args.index("--warehouse") + 1]
        assert f"rendered for {kind}" in result.output
    postgres = CliRunner().invoke(cli, examples[1]).output
    assert "src.public.items -> src.items and src.items_history" in postgres
    assert '"tags" TEXT[]' in postgres and '"price" DECIMAL(12, 2)' in postgres
