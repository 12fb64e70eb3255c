"""The demo's overlapping phases: the graph load starts when the pipeline has written gold,
runs while the pipeline goes on, and every phase completes and reports (cli/demo.py)."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

import pytest

from cli.demo import Clock, overlapped
from cli.progress import board

WAIT_S = 30.0  # a bound for a broken build, never reached when the code works


def test_the_side_work_starts_when_main_completes_the_stage_and_runs_alongside() -> None:
    side_started, main_went_on = threading.Event(), threading.Event()
    seen: list[str] = []

    def main(reached: Callable[[str], None]) -> str:
        reached("silver")
        seen.append(f"after silver: side started {side_started.is_set()}")
        reached("gold")
        assert side_started.wait(WAIT_S), "the side work did not start after gold"
        main_went_on.set()  # main still runs while the side work waits for it
        reached("train")
        return "trained"

    def side() -> None:
        side_started.set()
        assert main_went_on.wait(WAIT_S), "main did not go on while the side work ran"
        seen.append("side done")

    assert overlapped(main, side, after="gold") == "trained"
    assert seen == ["after silver: side started False", "side done"]


def test_the_side_work_runs_once_main_returns_when_the_stage_never_comes() -> None:
    order: list[str] = []

    def main(reached: Callable[[str], None]) -> str:
        reached("silver")
        order.append("main")
        return "skipped: waiting for gold"

    assert overlapped(main, lambda: order.append("side"), after="gold").startswith("skipped")
    assert order == ["main", "side"]


def test_an_error_of_the_side_work_is_raised_after_main_completes() -> None:
    completed: list[str] = []

    def main(reached: Callable[[str], None]) -> None:
        reached("gold")
        completed.append("main")

    def side() -> None:
        raise RuntimeError("Neo4j is not answering")

    with pytest.raises(RuntimeError, match="Neo4j"):
        overlapped(main, side, after="gold")
    assert completed == ["main"]


def test_an_error_of_main_wins_and_the_side_work_still_completes() -> None:
    side_done = threading.Event()

    def main(reached: Callable[[str], None]) -> None:
        reached("gold")
        raise ValueError("gold sku_daily is empty")

    with pytest.raises(ValueError, match="sku_daily"):
        overlapped(main, side_done.set, after="gold")
    assert side_done.is_set()


def test_phase_lines_go_to_stdout_beside_the_progress_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    progress = io.StringIO()
    ticks = iter([0.0, 10.0, 12.0, 20.0, 31.0])
    with board(stream=progress) as shown:
        clock = Clock(shown.print, lambda: next(ticks))
        pipeline_began, graph_began = clock.now(), clock.now()
        clock.done("graph", "[3 tables] loaded", graph_began)
        clock.done("pipeline", "trained", pipeline_began)
    assert capsys.readouterr().out.splitlines() == [
        "[  20.0s] graph done in 8.0s: [3 tables] loaded",
        "[  31.0s] pipeline done in 21.0s: trained",
    ]
    assert progress.getvalue() == ""
