"""Sliding event-time sums and bounded dedupe: the arithmetic the features rest on."""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from datetime import UTC, datetime

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.dedupe import ID_BYTES, SHARDS, SLICE_S, Item, SeenIds, dedupe_key
from flows.windows import SlidingSums

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
    w = SlidingSums(bucket_s, buckets, 1)
    for t, v in adds:
        w.add(t, 0, v)
    assert w.totals[0] == pytest.approx(expected)


def test_sliding_sum_is_independent_of_arrival_order() -> None:
    """The final window holds the same sum whatever order the values came in."""
    rng = random.Random(1)
    values = [(rng.uniform(0, 7_200), rng.uniform(0, 10)) for _ in range(2_000)]
    head = max(t for t, _ in values)
    expected = sum(v for t, v in values if t // 60 > head // 60 - 60)
    for _ in range(5):
        rng.shuffle(values)
        w = SlidingSums(60, 60, 1)
        for t, v in values:
            w.add(t, 0, v)
        assert w.totals[0] == pytest.approx(expected)


@pytest.mark.parametrize(("bucket_s", "buckets"), [(10, 30), (60, 60), (900, 96)])
def test_each_measure_sums_what_its_window_holds(bucket_s: int, buckets: int) -> None:
    """Measures sharing one list of buckets each sum exactly the values of their own that lie
    in the window (a value outside it when it came is dropped for good), through late
    values, gaps and a snapshot."""
    rng = random.Random(bucket_s)
    w = SlidingSums(bucket_s, buckets, 4)
    kept: list[tuple[int, int, float]] = []  # (bucket, measure, value) the window took
    head, t = -1, 0.0
    for step in range(3_000):
        t += rng.expovariate(1 / bucket_s) * (50 if step % 500 == 0 else 1)  # now and then a gap
        at = t - rng.uniform(0, bucket_s * buckets * 1.2) if rng.random() < 0.2 else t  # late
        measure, value = rng.randrange(4), rng.uniform(0, 10)
        b = int(at // bucket_s)
        head = max(head, b)
        taken = b > head - buckets
        assert w.add(at, measure, value) == taken
        if taken:
            kept.append((b, measure, value))
        if step == 1_500:
            w = pickle.loads(pickle.dumps(w))
        expected = [0.0] * 4
        for kb, km, kv in kept:
            if kb > head - buckets:
                expected[km] += kv
        assert w.totals == pytest.approx(expected, abs=1e-9)


def _clock(start: float = 1_000.0) -> Callable[[], float]:
    now = [start]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    return clock


def test_dedupe_drops_repeats_and_keeps_them_across_a_snapshot() -> None:
    seen = SeenIds[Item](horizon_s=100, clock=_clock())
    assert seen.on_item(Item("a")) == ([Item("a")], False)
    assert seen.on_item(Item("a")) == ([None], False)
    snap = seen.snapshot()
    seen.on_item(Item("b"))
    assert len(snap.hashes) == ID_BYTES  # later events do not change a snapshot
    resumed = SeenIds[Item](horizon_s=100, resume=pickle.loads(pickle.dumps(snap)))
    assert resumed.on_item(Item("a")) == ([None], False)
    assert resumed.on_item(Item("b")) == ([Item("b")], False)


def test_dedupe_forgets_a_key_a_horizon_after_its_last_event() -> None:
    seen = SeenIds[Item](horizon_s=100, clock=_clock(1_000.0))
    seen.on_item(Item("a"))  # at 1002
    assert seen.notify_at() == datetime.fromtimestamp(1_102.0, UTC)
    seen.on_item(Item("b"))  # at 1003: the timer moves
    assert seen.notify_at() == datetime.fromtimestamp(1_103.0, UTC)
    assert seen.on_notify() == ((), True)  # discarded: the ids are forgotten


def test_a_repeat_meets_its_original_and_minutes_spread_over_shards() -> None:
    t = 1_767_607_230.5
    assert dedupe_key("event-1", t) == dedupe_key("event-1", t)
    keys = {dedupe_key(f"e-{i}", t) for i in range(5_000)}
    assert len(keys) == SHARDS  # one minute's ids spread over every shard
    assert {k.split(":")[0] for k in keys} == {str(int(t // SLICE_S))}
    assert dedupe_key("e-1", t).split(":")[0] != dedupe_key("e-1", t + SLICE_S).split(":")[0]


def test_dedupe_in_a_dataflow_drops_repeats_in_any_order() -> None:
    events = [Item(f"e-{i % 50}") for i in range(200)]  # each id four times
    random.Random(2).shuffle(events)
    flow = Dataflow("dedupe")
    keyed = op.key_on(
        "key",
        op.input("in", flow, TestingSource(events, 10)),
        lambda e: dedupe_key(e.event_id, 0.0),
    )
    out = op.stateful("dedupe", keyed, lambda resume: SeenIds[Item](3_600.0, resume))
    got: list[tuple[str, Item | None]] = []
    op.output("out", out, TestingSink(got))
    run_main(flow)
    firsts = [e for _, e in got if e is not None]
    assert sorted(e.event_id for e in firsts) == sorted(f"e-{i}" for i in range(50))
    assert sum(e is None for _, e in got) == 150


def test_a_window_restored_from_its_snapshot_goes_on_identically() -> None:
    rng = random.Random(5)
    w = SlidingSums(60, 30, 4)
    for _ in range(500):
        w.add(rng.uniform(0, 3_000), rng.randrange(4), rng.uniform(0, 5))
    copy = pickle.loads(pickle.dumps(w))
    assert (copy.head, copy.totals, list(copy._buckets)) == (w.head, w.totals, list(w._buckets))
    assert all(type(entry[0]) is int for entry in copy._buckets)
    for _ in range(200):  # late, current and future values alike
        t, i, v = rng.uniform(1_000, 4_000), rng.randrange(4), rng.uniform(0, 5)
        assert copy.add(t, i, v) == w.add(t, i, v)
    assert copy.totals == pytest.approx(w.totals)


def test_dedupe_remembers_every_id_across_merges_and_a_resume() -> None:
    seen = SeenIds[Item](horizon_s=100, clock=_clock())
    ids = [f"event-{i}" for i in range(20_000)]
    assert all(seen.on_item(Item(i))[0] == [Item(i)] for i in ids)
    assert len(seen) == len(ids)
    assert all(seen.on_item(Item(i))[0] == [None] for i in ids[::7])
    resumed = SeenIds[Item](horizon_s=100, resume=pickle.loads(pickle.dumps(seen.snapshot())))
    assert all(resumed.on_item(Item(i))[0] == [None] for i in ids[::3])
    assert resumed.on_item(Item("event-new"))[0] == [Item("event-new")]


@pytest.mark.parametrize("n", [1_000, 50_000, 200_000])
def test_dedupe_holds_at_most_16_bytes_per_id_in_memory_and_in_its_snapshot(n: int) -> None:
    seen = SeenIds[Item](horizon_s=100, clock=_clock())
    for i in range(n):
        seen.on_item(Item(f"{i:08d}-5b1c2f0e-9d7a-4c4e-8f8e-{i:012d}"))
    assert seen.memory_bytes() / n <= 16  # before a snapshot: array + unmerged recent ids
    snapshot_bytes = len(pickle.dumps(seen.snapshot(), protocol=pickle.HIGHEST_PROTOCOL))
    assert snapshot_bytes / n <= ID_BYTES + 1
    assert seen.memory_bytes() <= n * ID_BYTES + 256  # merged by the snapshot (+ an empty set)
