"""Progress on long work: a rich display on a terminal, plain lines otherwise, never the same line
twice (issue 12: the demo's drain printed "run: 0 events applied in N batches" dozens of times)."""

from __future__ import annotations

import io

import pytest

from cdchub.progress import optional_bar, progress_bar, run_progress


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, so the rich display is chosen."""

    def isatty(self) -> bool:
        return True


def test_plain_run_progress_drops_a_line_equal_to_the_one_before(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with run_progress(force_plain=True) as progress:
        for message in [
            "run: 0 events applied in 0 batches",
            "run: 0 events applied in 0 batches",
            "run: 0 events applied in 0 batches",
            "demo: draining until idle for 5s (at most 185s)",
            "run: 40 events applied in 2 batches",
            "run: 40 events applied in 2 batches",
        ]:
            progress(message)
    assert capsys.readouterr().err.splitlines() == [
        "run: 0 events applied in 0 batches",
        "demo: draining until idle for 5s (at most 185s)",
        "run: 40 events applied in 2 batches",
    ]


def test_run_progress_on_a_terminal_keeps_the_counter_on_one_live_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with run_progress() as progress:
        for n in range(50):
            progress(f"run: {n} events applied in {n} batches")
            progress(f"workload: {n * 10}/500 changes, {n} tx, 400/s")
        progress("run: table shop.public.orders stopped: a reason")
    out = terminal.getvalue()
    # Other messages print once, above the live line; the counter is not a scrolling log.
    assert out.count("run: table shop.public.orders stopped: a reason") == 1
    assert out.count("\n") < 10, out


def test_plain_bar_prints_the_final_count_held_back_by_the_rate_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress_bar("replay shop.orders", force_plain=True) as bar:
        for done in range(0, 101, 10):  # all within the 2 s limit: only the first prints
            bar(done, 100)
    assert capsys.readouterr().err.splitlines() == [
        "replay shop.orders: 0/100",
        "replay shop.orders: 100/100",
    ]


def test_optional_bar_is_none_for_a_plan_only(capsys: pytest.CaptureFixture[str]) -> None:
    with optional_bar("replay shop.orders", False) as bar:
        assert bar is None
    with optional_bar("replay shop.orders", True) as bar:
        assert bar is not None
        bar(3, 3)
    assert capsys.readouterr().err.splitlines() == ["replay shop.orders: 3/3"]
