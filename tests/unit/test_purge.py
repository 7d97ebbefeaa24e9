"""`cdchub stack down --purge` deletes only what the stack made under `state_dir` (issue 10)."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from cdchub.cli import cli


def _config(tmp_path: Path, warehouse: Path) -> Path:
    path = tmp_path / "cdchub.yaml"
    doc = {
        "state_dir": str(tmp_path / "state"),
        # Ports nothing listens on: no component of this stack is running.
        "stack": {
            "ports": {"postgres": 1, "mariadb": 2, "kafka": 3, "kafka_controller": 4, "connect": 5}
        },
        "sources": [],
        "warehouse": {"kind": "duckdb", "path": str(warehouse)},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"user data")
    return path


def test_purge_keeps_a_warehouse_outside_the_state_dir(tmp_path: Path) -> None:
    warehouse = _touch(tmp_path / "var" / "lib" / "cdchub" / "warehouse.duckdb")
    wal = _touch(warehouse.with_name("warehouse.duckdb.wal"))
    logs = _touch(tmp_path / "state" / "logs" / "kafka.log")
    result = CliRunner().invoke(
        cli, ["--config", str(_config(tmp_path, warehouse)), "stack", "down", "--purge"]
    )
    assert result.exit_code == 0, result.output
    assert warehouse.read_bytes() == b"user data" and wal.exists()
    assert not logs.exists()  # what the stack made is gone
    assert "kept the warehouse" in result.output


def test_purge_deletes_the_warehouse_the_stack_made_under_the_state_dir(tmp_path: Path) -> None:
    warehouse = _touch(tmp_path / "state" / "warehouse.duckdb")
    result = CliRunner().invoke(
        cli, ["--config", str(_config(tmp_path, warehouse)), "stack", "down", "--purge"]
    )
    assert result.exit_code == 0, result.output
    assert not warehouse.exists()
