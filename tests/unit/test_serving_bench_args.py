"""The serving benchmark's command line (``benchmarks/serving.py``): ``--only prices``."""

from __future__ import annotations

import pytest

from benchmarks.common import Mode
from benchmarks.serving import parse_args


def test_only_prices_is_read_beside_the_mode() -> None:
    assert parse_args(["--only", "prices", "--smoke"]) == (Mode(smoke=True), True)
    assert parse_args(["--only", "prices"]) == (Mode(smoke=False), True)
    assert parse_args(["--smoke"]) == (Mode(smoke=True), False)
    assert parse_args([]) == (Mode(smoke=False), False)


def test_an_unknown_phase_or_option_is_refused() -> None:
    for argv in (["--only", "lists"], ["--fast"]):
        with pytest.raises(SystemExit):
            parse_args(argv)
