"""One registry of warehouse kinds, one folder per kind with the same files, no driver for planning."""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path

from click.testing import CliRunner

from cdchub.cli import cli
from connectors.warehouses import REGISTRY, dialect_for, kinds, open_session
from core.config import HubConfig, WarehouseConfig

FOLDER = Path(__file__).resolve().parents[2] / "connectors" / "warehouses"
FILES = {"__init__.py", "dialect.py", "client.py", "errors.py", "values.py", "sandbox.py"}


def _config_kinds() -> set[str]:
    union = typing.get_args(WarehouseConfig)[0]
    return {
        kind
        for model in typing.get_args(union)
        for kind in typing.get_args(model.model_fields["kind"].annotation)
    }


def test_the_registry_and_the_config_know_the_same_kinds() -> None:
    assert set(kinds()) == _config_kinds()
    assert {p.config for p in REGISTRY.values()} == set(
        typing.get_args(typing.get_args(WarehouseConfig)[0])
    )
    assert kinds()[0] == "duckdb"  # the default


def test_every_warehouse_folder_has_the_same_files() -> None:
    for kind in kinds():
        present = {p.name for p in (FOLDER / kind).glob("*.py")}
        assert present >= FILES, (kind, FILES - present)
        assert kind == dialect_for(kind).NAME


def test_planning_imports_no_driver() -> None:
    """render-sql and the engine's planning reach a dialect without loading a database driver."""
    code = (
        "import sys\n"
        "from connectors.warehouses import kinds, dialect_for\n"
        "from cdchub.render_sql import render_plan\n"
        "[dialect_for(k) for k in kinds()]\n"
        "print(sorted(m for m in ('duckdb', 'psycopg', 'snowflake.connector', 'pyarrow') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_open_session_goes_through_the_registry(tmp_path: Path) -> None:
    config = HubConfig.model_validate(
        {"warehouse": {"kind": "duckdb", "path": str(tmp_path / "w.duckdb")}, "sources": []}
    )
    session = open_session(config)
    try:
        assert type(session).__module__ == "connectors.warehouses.duckdb.client"
        assert session.query("SELECT 1") == [(1,)]  # type: ignore[arg-type]
    finally:
        session.close()


def test_cli_choices_are_the_registry() -> None:
    result = CliRunner().invoke(cli, ["render-sql", "--help"])
    assert result.exit_code == 0
    assert "[duckdb|postgres|snowflake]" in result.output
