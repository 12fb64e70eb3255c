"""The stream benchmark's command line (``--only freshness``) and a freshness run's figures
(``benchmarks.stream.figures``): the probes sent while the load ran are told apart from those
after it, which the flow answers at once."""

from __future__ import annotations

import pytest

from benchmarks.common import Mode
from benchmarks.stream import PROBE_WAIT_S, Probe, figures, parse_args


def test_the_freshness_phase_alone_is_read_beside_the_mode() -> None:
    assert parse_args(["--only", "freshness", "--smoke"]) == (Mode(smoke=True), "freshness")
    assert parse_args([]) == (Mode(smoke=False), None)
    for argv in (["--only", "throughput"], ["--fast"]):
        with pytest.raises(SystemExit):
            parse_args(argv)


def test_the_probes_in_the_load_have_their_own_percentiles() -> None:
    # 10 probes while a 10 s load ran, behind it (500-1,400 ms, one missed), then 30 quick ones
    behind = [Probe(float(i), 500.0 + 100 * i, 5_000 * i, 0.8 * i) for i in range(9)]
    missed = [Probe(9.5, PROBE_WAIT_S * 1000, 50_000, 8.0)]
    after = [Probe(10.0 + i / 10, 20.0, 50_000, 8.5) for i in range(30)]
    seen = figures(behind + missed + after, load_s=10)
    assert seen["load_probes"] == 10
    assert seen["load_p50_ms"] == pytest.approx(950.0)  # between 900 and 1,000
    assert seen["load_p90_ms"] == pytest.approx(1_300.0 + 0.1 * (5_000 - 1_300))
    assert seen["p50_ms"] == 20.0  # the whole run's: the quick probes after the load
    assert seen["missed"] == 1
    assert seen["cpu_us_per_event"] == pytest.approx(8.5 / 50_000 * 1e6)
