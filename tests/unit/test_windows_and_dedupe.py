"""Sliding event-time sums and bounded dedupe: the arithmetic the features rest on."""

from __future__ import annotations

import random

import pytest

from flows.dedupe import BUCKETS, RecentIds, bucket_of
from flows.windows import SlidingSum

# (bucket_s, buckets, [(t, v)...], expected total)
CASES = [
    ("empty", 60, 5, [], 0.0),
    ("one bucket", 60, 5, [(10, 1.0), (20, 2.0)], 3.0),
    ("exactly the span", 60, 5, [(0, 1.0), (299, 1.0)], 2.0),
    ("oldest bucket falls out", 60, 5, [(0, 1.0), (300, 1.0)], 1.0),
    ("late but inside", 60, 5, [(0, 1.0), (200, 1.0), (100, 5.0)], 7.0),
    ("late and outside", 60, 5, [(600, 1.0), (100, 5.0)], 1.0),
    ("late into a gap", 10, 30, [(0, 1.0), (100, 1.0), (50, 2.0), (55, 2.0)], 6.0),
    ("long gap empties", 10, 30, [(0, 1.0), (10_000, 2.0)], 2.0),
    ("24h of 15 min", 900, 96, [(0, 1.0), (86_399, 1.0), (86_400, 1.0)], 2.0),
]


@pytest.mark.parametrize(
    ("case", "bucket_s", "buckets", "adds", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_sliding_sum(
    case: str, bucket_s: int, buckets: int, adds: list[tuple[float, float]], expected: float
) -> None:
    w = SlidingSum(bucket_s, buckets)
    for t, v in adds:
        w.add(t, v)
    assert w.total == pytest.approx(expected)


def test_sliding_sum_is_independent_of_arrival_order() -> None:
    """The final window holds the same sum whatever order the values came in."""
    rng = random.Random(1)
    values = [(rng.uniform(0, 7_200), rng.uniform(0, 10)) for _ in range(2_000)]
    head = max(t for t, _ in values)
    expected = sum(v for t, v in values if t // 60 > head // 60 - 60)
    for _ in range(5):
        rng.shuffle(values)
        w = SlidingSum(60, 60)
        for t, v in values:
            w.add(t, v)
        assert w.total == pytest.approx(expected)


def test_dedupe_forgets_after_the_horizon_and_stays_bounded() -> None:
    seen = RecentIds(horizon_s=100, max_ids=50)
    assert seen.first_time("a", 0)
    assert not seen.first_time("a", 50)
    assert seen.first_time("a", 500)  # beyond the horizon: new again
    for i in range(1_000):
        seen.first_time(f"id-{i}", 500 + i * 0.01)
    assert len(seen._ids) <= 50
    assert seen.duplicates == 1


def test_buckets_are_stable_and_spread() -> None:
    assert bucket_of("event-1") == bucket_of("event-1")
    used = {bucket_of(f"e-{i}") for i in range(5_000)}
    assert len(used) == BUCKETS
