"""`cdchub bench merge` refuses a warehouse that is not the local stack's unless given --yes (issue 10).

The refusal comes before any connection; tests/integration/test_names.py runs the benchmark on the
stack's PostgreSQL warehouse and checks that it leaves no trace and touches no user schema.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cdchub.cli import cli

OTHER_POSTGRES = {
    "kind": "postgres",
    "host": "127.0.0.1",
    "port": 1,  # nothing listens: a refusal must come before any connection attempt
    "database": "analytics",
    "user": "etl",
    "password": "secret",
}
SNOWFLAKE = {
    "kind": "snowflake",
    "account": "acme-prod",
    "user": "etl",
    "password": "secret",
    "database": "analytics",
}


def _config(tmp_path: Path, warehouse: dict[str, object]) -> Path:
    path = tmp_path / "cdchub.yaml"
    doc = {"state_dir": str(tmp_path / "state"), "sources": [], "warehouse": warehouse}
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("kind", "warehouse"), [("postgres", OTHER_POSTGRES), ("snowflake", SNOWFLAKE)]
)
def test_bench_refuses_a_warehouse_that_is_not_the_stacks(
    tmp_path: Path, kind: str, warehouse: dict[str, object]
) -> None:
    config = _config(tmp_path, warehouse)
    result = CliRunner().invoke(
        cli, ["--config", str(config), "bench", "merge", "--warehouse", kind, "--events", "10"]
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "--yes" in lines[0] and "local stack" in lines[0], result.output
    assert "secret" not in result.output


def test_bench_with_yes_goes_ahead(tmp_path: Path) -> None:
    config = _config(tmp_path, OTHER_POSTGRES)
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "bench", "merge", "--warehouse", "postgres", "--yes",
         "--events", "10"],
    )  # fmt: skip
    # It tries the configured warehouse (nothing listens on port 1): a connection error, no refusal.
    assert "not the local stack" not in result.output


def test_bench_on_fakesnow_and_duckdb_runs(tmp_path: Path) -> None:
    config = _config(tmp_path, {"kind": "duckdb", "path": str(tmp_path / "w.duckdb")})
    for kind in ("duckdb", "snowflake"):
        result = CliRunner().invoke(
            cli,
            ["--config", str(config), "bench", "merge", "--warehouse", kind, "--events", "300",
             "--batch", "100", "--keys", "50", "--json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    assert not (tmp_path / "w.duckdb").exists()  # the configured warehouse is never touched
