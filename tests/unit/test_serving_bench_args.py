"""The serving benchmark's command line (``benchmarks/serving.py``): ``--only`` a phase and
``--pacing``, and the paced pauses each pacing gives wrk."""

from __future__ import annotations

import math
import random

import pytest

from benchmarks.common import Mode
from benchmarks.serving import PACE_MS, WRK_PACE, parse_args


def test_the_phase_alone_and_the_pacing_are_read_beside_the_mode() -> None:
    smoke = parse_args(["--only", "prices", "--smoke"])
    assert smoke == (Mode(smoke=True), "prices", "exponential")
    assert parse_args(["--only", "lists"]) == (Mode(smoke=False), "lists", "exponential")
    assert parse_args(["--smoke", "--pacing", "fixed"]) == (Mode(smoke=True), None, "fixed")
    assert parse_args([]) == (Mode(smoke=False), None, "exponential")


def test_an_unknown_phase_pacing_or_option_is_refused() -> None:
    for argv in (["--only", "recs"], ["--pacing", "uniform"], ["--fast"]):
        with pytest.raises(SystemExit):
            parse_args(argv)


def _pause(script: str, u: float) -> int:
    """The pause wrk's ``delay()`` returns for Lua's ``math.random()`` = ``u``, the script's
    one expression evaluated as Lua would (``math.floor``, ``math.log``)."""
    body = script % PACE_MS
    expression = body.split("return ", 1)[1].split("\n", 1)[0]
    lua = {"floor": math.floor, "log": math.log, "random": lambda: u}
    return int(eval(expression, {"math": type("math", (), lua)}))


def test_exponential_pauses_keep_the_fixed_pauses_mean_and_vary() -> None:
    rng = random.Random(1)
    pauses = [_pause(WRK_PACE["exponential"], rng.random()) for _ in range(100_000)]
    assert abs(sum(pauses) / len(pauses) - PACE_MS) < 0.05  # the same offered rate
    assert min(pauses) == 0  # memoryless: short pauses and long ones
    assert max(pauses) > 5 * PACE_MS
    assert {_pause(WRK_PACE["fixed"], u) for u in (0.01, 0.5, 0.99)} == {PACE_MS}
