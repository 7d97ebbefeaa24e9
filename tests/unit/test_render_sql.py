"""`cdchub render-sql`: every demo table renders on every warehouse, and golden plans per dialect.

Regenerate the golden files after an intended plan change with `CDCHUB_UPDATE_GOLDEN=1 pytest …`
and review the diff: it is the SQL every warehouse will run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot
from click.testing import CliRunner

from cdchub.cli import cli
from cdchub.render_sql import render_plan
from dbschemas.demo_tables import demo_tables, parse_columns

KINDS = ["duckdb", "postgres", "snowflake"]
GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("kind", KINDS)
def test_every_demo_table_renders_and_parses_back(kind: str) -> None:
    for shape in demo_tables():
        text = render_plan(kind, shape)
        read = "postgres" if kind == "postgres" else kind
        statements = [s for s in sqlglot.parse(text, read=read) if s is not None]
        # BEGIN, 2 stage + 1 truncate stage, 8 merge steps (7 without value columns), 3 control, COMMIT
        assert len(statements) >= 14, shape.table


@pytest.mark.parametrize("kind", KINDS)
def test_golden_plan(kind: str) -> None:
    shape = parse_columns("src.public.items", "id:int64, name:string, price:decimal(12,2)", "id")
    text = render_plan(kind, shape) + "\n"
    path = GOLDEN / f"items.{kind}.sql"
    if os.environ.get("CDCHUB_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


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
