"""`cdchub bench catchup` end to end with a tiny backlog: it starts its own private stack, fills Kafka
through Debezium, drains it with a fresh run, verifies against the source and times the JDBC sink.

It proves the command works as a user runs it; the figures it prints are not checked (speed is never
asserted in a test).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(900)

CDCHUB = Path(sys.executable).with_name("cdchub")


def _bench(tmp_path: Path, *options: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`cdchub bench catchup OPTIONS --json` as a user types it, in `tmp_path`; it must exit 0."""
    proc = subprocess.run(
        [str(CDCHUB), "bench", "catchup", *options, "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_bench_catchup_small_backlog_both_modes_with_peer(tmp_path: Path) -> None:
    proc = _bench(tmp_path, "--events", "3000", "--compare-consistency", "--peer", timeout=880)
    results = json.loads(proc.stdout)  # one document: an array, one object per timed run
    assert [r["transaction_consistent"] for r in results] == [True, False]
    # A small backlog fits the transaction buffer: every transaction was applied whole.
    assert results[0]["forced_releases"] == 0
    for result in results:
        assert result["verify_ok"] is True, result["verify_failures"]
        assert result["events"] >= 3000
        # Every row change Debezium wrote was applied, exactly once.
        assert result["applied_events"] == result["events"]
        assert result["transactions"] > 0 and result["snapshot_rows"] > 0
        assert result["events_per_s"] > 0 and result["peak_rss_mb"] > 0
        split = result["split"]
        assert split["merge"] > 0 and split["decode"] > 0
        assert result["peer"]["equal"] is True
        assert result["speedup_over_peer"] > 0


def test_bench_catchup_consistency_off_with_a_profile(tmp_path: Path) -> None:
    """`--no-transaction-consistent` times that mode alone; `--profile` writes py-spy's collapsed
    stacks of the timed run (~30 s on a quiet machine: a tiny backlog, one mode, no peer)."""
    profile = tmp_path / "spy.txt"
    proc = _bench(
        tmp_path,
        "--events",
        "1000",
        "--no-transaction-consistent",
        "--profile",
        "spy.txt",
        timeout=600,
    )
    [result] = json.loads(proc.stdout)
    assert result["transaction_consistent"] is False
    assert result["verify_ok"] is True, result["verify_failures"]
    assert result["applied_events"] == result["events"] >= 1000
    assert f"bench: profile of the timed run in {profile}" in proc.stderr
    stacks = profile.read_text().splitlines()
    # Collapsed stacks ("frame;frame;… count"), sampled while the run drained the backlog.
    assert stacks and all(line.rsplit(" ", 1)[1].isdigit() for line in stacks)
    assert any("_timed_run (cdchub/bench_catchup.py" in line for line in stacks)
