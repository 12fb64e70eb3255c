"""BENCHMARKS.md states the sizes a run recorded of itself, not a hand-written label."""

from __future__ import annotations

from benchmarks.report import setup


def test_a_run_s_recorded_sizes_are_stated_in_its_header() -> None:
    meta = {"runs": {"repeats": 3, "events": 150_000, "input_partitions": 4, "x": [1.0]}}
    assert setup(meta) == "; events: 150,000; input partitions a topic: 4"
    assert setup({"runs": {"repeats": 3}}) == ""  # a run that recorded neither
