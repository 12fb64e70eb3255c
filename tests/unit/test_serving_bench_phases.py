"""The order of the serving benchmark's phases against one API (``benchmarks/serving.py``
``exercise``): each paced phase measured right after its own warm-up, the lists over their
longer window. wrk stands in for itself here by recording what it was asked to run."""

from __future__ import annotations

import os
from typing import Any

import pytest

import benchmarks.serving as bench
from benchmarks.serving import FULL, LISTS, LISTS_WARM_S, PRICES, exercise


class Started:
    """What :func:`exercise` reads of the API's process: its id (here this process)."""

    pid = os.getpid()


def runs_of_wrk(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int | None]]:
    """Each wrk run :func:`exercise` asks for, in order: path, seconds, paced rate."""
    asked: list[tuple[str, int, int | None]] = []

    def wrk(
        url: str,
        ids: list[str],
        path: str,
        settings: Any,
        seconds: int,
        per_s: int | None = None,
        *_: Any,
        **__: Any,
    ) -> dict[str, float]:
        asked.append((path, seconds, per_s))
        return {"rps": 1.0, "requests": 1.0, "p50": 1.0, "p99": 1.0, "errors": 0.0}

    monkeypatch.setattr(bench, "wrk", wrk)
    return asked


def test_the_paced_lists_are_measured_right_after_their_warm_up_at_their_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = runs_of_wrk(monkeypatch)
    api: Any = Started()
    runs: dict[str, list[float]] = {}
    exercise(runs, "", api, "http://127.0.0.1:1", (["s1"], ["u1"]), None, FULL)  # type: ignore[arg-type]
    lists = [i for i, (path, _, _) in enumerate(asked) if path == LISTS]
    warm, paced, most = (asked[i] for i in lists)
    assert lists == [lists[0], lists[0] + 1, lists[0] + 2]  # nothing between them
    assert warm == (LISTS, LISTS_WARM_S, FULL.recs_per_s)
    assert paced == (LISTS, FULL.lists_seconds, FULL.recs_per_s)
    assert most == (LISTS, FULL.seconds, None)  # saturating
    assert all(path == PRICES for path, _, _ in asked[: lists[0]])  # the prices before
    assert runs["recs_rps"] == runs["recs_max_rps"] == [1.0]


def test_the_lists_window_holds_enough_lists_for_their_p99() -> None:
    """At the goal's rate the measured window holds some 20,000 lists: their p99 rests on
    ~200 of the slowest, where 5 s rested on ~50."""
    assert FULL.lists_seconds * FULL.recs_per_s * 0.01 >= 200
