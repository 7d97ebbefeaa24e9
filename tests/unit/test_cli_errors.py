"""Every failure is one line on stderr with an exit status; the traceback only with --debug.

Real servers are absent here on purpose: a closed port on 127.0.0.1 is what a stopped Kafka or
source looks like to a client (the integration tests stop the stack's own Kafka).
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest
import yaml
from click.testing import CliRunner

from cdchub.cli import cli
from tests.configs import config_file


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return errors[0]


def test_config_given_a_directory(tmp_path: Path) -> None:
    code, _, err = invoke("--config", str(tmp_path), "tables")
    assert code == 2
    assert "names a directory" in one_error_line(err)


@pytest.mark.parametrize("under", ["file", "proc"])
def test_warehouse_path_that_cannot_be_created(tmp_path: Path, under: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    parent = blocker if under == "file" else Path("/proc/cdchub-no-such-dir")
    config = config_file(tmp_path, warehouse=str(parent / "sub" / "wh.duckdb"))
    code, _, err = invoke("--config", str(config), "schema", "accept", "shop.orders")
    assert code == 2
    line = one_error_line(err)
    assert "cannot create the warehouse directory" in line
    if under == "file":
        assert f"{blocker} is a file" in line


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ops.catalog

    def broken(_session: object) -> list[object]:
        raise RuntimeError("a bug\nwith a second line")

    monkeypatch.setattr(ops.catalog, "replicated_tables", broken)
    config = config_file(tmp_path)
    duckdb.connect(str(tmp_path / "wh.duckdb")).close()
    code, _, err = invoke("--config", str(config), "tables")
    assert code == 2
    assert one_error_line(err) == ("error: RuntimeError: a bug (--debug shows the traceback)")
    code, _, err = invoke("--debug", "--config", str(config), "tables")
    assert code == 2
    assert "Traceback" in err


def test_run_with_kafka_down_is_one_line_within_max_seconds(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    servers = yaml.safe_load(config.read_text())["kafka"]["bootstrap_servers"]
    started = time.monotonic()
    code, _, err = invoke("--config", str(config), "run", "--max-seconds", "3")
    elapsed = time.monotonic() - started
    assert code == 2
    line = one_error_line(err)
    assert servers in line and "Kafka is not reachable" in line
    assert len(err.splitlines()) <= 3, err  # no kafka-python connection log
    assert elapsed < 3 + 10, elapsed  # kafka-python's own bootstrap wait is 30 s


def test_verify_with_no_sources_says_why(tmp_path: Path) -> None:
    config = config_file(tmp_path, sources=False)
    code, out, err = invoke("--config", str(config), "verify")
    assert code == 2
    assert "no sources configured" in one_error_line(err)
    assert "verify: FAILED" not in out


def test_verify_against_a_source_that_is_down_reports_it_once(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    code, out, err = invoke("--config", str(config), "verify", "--json")
    assert code == 1, err
    import json

    report = json.loads(out)
    assert [t["table"] for t in report["tables"]] == ["*"]
    entry = report["tables"][0]
    assert entry["source_rows"] is None and entry["warehouse_rows"] is None
    assert "cannot connect to source 'shop'" in entry["error"]
    assert "\n" not in entry["error"]
    code, out, err = invoke("--config", str(config), "verify")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("FAIL shop.*: cannot connect to source 'shop' at 127.0.0.1:")
    assert lines[-1] == "verify: FAILED"
    assert len(lines) == 2, out
