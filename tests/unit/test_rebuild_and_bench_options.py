"""Options of `cdchub rebuild` and `cdchub bench catchup` that need no stack, run as a user types them.

The stack side is in tests/integration/test_rebuild.py (rebuild --snapshot / --accept-history-loss on
the real stack) and tests/integration/test_bench_catchup.py (bench catchup end to end). Here:
- `rebuild --snapshot --execute` on Snowflake is refused in one line before anything is read or
  signalled (its DDL commits, so no atomic swap);
- `bench catchup --transaction-consistent/--no-transaction-consistent` and `--profile FILE` reach
  the benchmark as given (the benchmark's entry is replaced here: it starts a private stack of its
  own; tests/integration/test_bench_catchup.py runs it end to end);
- `--profile`'s sampler is the real py-spy: it writes collapsed stacks of the code that ran.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import cdchub.bench_catchup as bench_catchup_module
from cdchub.bench_catchup import _profiler
from cdchub.cli import cli


def test_rebuild_on_snowflake_is_refused_before_any_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_PW", "unused")
    config = tmp_path / "cdchub.yaml"
    config.write_text(
        "warehouse:\n  kind: snowflake\n  account: nowhere\n  user: u\n  password: ${SF_PW}\n"
        "  database: d\n"
    )
    done = CliRunner().invoke(
        cli,
        ["--config", str(config), "rebuild", "--table", "shop.orders", "--snapshot", "--execute"],
    )
    assert done.exit_code == 2, done.output
    assert "could not swap atomically" in done.output
    assert done.output.strip().count("\n") == 0, done.output


def _bench_args(monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_bench(**kwargs: Any) -> list[Any]:
        seen.update(kwargs)
        return []

    monkeypatch.setattr(bench_catchup_module, "bench_catchup", fake_bench)
    done = CliRunner().invoke(cli, ["bench", "catchup", "--events", "1000", *args, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == []
    return seen


def test_bench_catchup_consistency_and_profile_options_reach_the_benchmark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = _bench_args(monkeypatch)
    assert default["transaction_consistent"] is True and default["profile"] is None
    assert default["events"] == 1000 and default["compare_consistency"] is False
    off = _bench_args(monkeypatch, "--no-transaction-consistent")
    assert off["transaction_consistent"] is False
    on = _bench_args(monkeypatch, "--transaction-consistent")
    assert on["transaction_consistent"] is True
    monkeypatch.chdir(tmp_path)
    profiled = _bench_args(monkeypatch, "--profile", "spy.txt")
    assert profiled["profile"] == tmp_path / "spy.txt"  # resolved: the run may change directory


def _busy_for(seconds: float) -> int:
    total, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        total += sum(i * i for i in range(500))
    return total


def test_profile_samples_the_block_with_py_spy(tmp_path: Path) -> None:
    output = tmp_path / "profile.txt"
    messages: list[str] = []
    with _profiler(output, messages.append):
        _busy_for(1.5)
    assert messages == [f"bench: profile of the timed run in {output}"]
    lines = output.read_text().splitlines()
    # Collapsed stacks: "frame;frame;... count", and the busy function among them.
    assert lines and all(line.rsplit(" ", 1)[1].isdigit() for line in lines)
    assert any("_busy_for" in line for line in lines)
