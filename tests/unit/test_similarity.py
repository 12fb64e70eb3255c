"""Item–item similarity learned online, and the shopper history it is learned from."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.records import UserSignal
from flows.steps import PAIR_WEIGHTS, ItemNeighbours, ShopperState, coalesce_pairs
from online_models.recommender import HISTORY, INTEREST_ITEMS, NEIGHBOURS, remember
from online_models.similarity import (
    BACKWARD,
    PAIR_DECAY,
    PAIR_DEPTH,
    CoOccurrence,
    damped,
    pairs,
)

KINDS = [*PAIR_WEIGHTS, "search"]


@pytest.mark.parametrize(
    ("history", "sku", "expected"),
    [
        ([], "a", []),
        (["a"], "a", []),  # no pair with itself
        (["b"], "a", [("b", "a", 1.0), ("a", "b", BACKWARD)]),
        (["a", "b"], "a", [("b", "a", 1.0), ("a", "b", BACKWARD)]),  # itself is skipped
        (
            ["c", "b"],
            "a",
            [
                ("c", "a", 1.0),
                ("a", "c", BACKWARD),
                ("b", "a", PAIR_DECAY),
                ("a", "b", BACKWARD * PAIR_DECAY),
            ],
        ),
    ],
)
def test_pairs_reach_back_into_the_history(
    history: list[str], sku: str, expected: list[tuple[str, str, float]]
) -> None:
    got = pairs(history, sku, 1.0)
    assert [(a, b) for a, b, _ in got] == [(a, b) for a, b, _ in expected]
    assert [w for _, _, w in got] == pytest.approx([w for _, _, w in expected])


def test_pairs_stop_at_the_depth() -> None:
    history = [f"i{n}" for n in range(PAIR_DEPTH + 5)]
    got = pairs(history, "new", 2.0)
    assert {a for a, _, _ in got if a != "new"} == set(history[:PAIR_DEPTH])
    assert len(got) == 2 * PAIR_DEPTH


def test_history_is_distinct_newest_first_and_bounded() -> None:
    history: list[str] = []
    for n in range(HISTORY + 10):
        remember(history, f"s{n}")
    remember(history, f"s{HISTORY}")
    assert len(history) == HISTORY
    assert history[0] == f"s{HISTORY}"
    assert len(set(history)) == HISTORY


def test_shopper_pairs_with_earlier_items_not_only_the_latest() -> None:
    shopper = ShopperState("u")
    catalogue = {"tea": "drinks", "milk": "dairy", "cake": "bakery"}
    out = []
    for t, sku in enumerate(["tea", "milk", "cake"]):
        out = shopper.apply(UserSignal("view", float(t), "s", (sku,)), catalogue).pairs
    formed = {(item, other) for item, (_, counts) in out for other, _w in counts}
    assert formed == {("milk", "cake"), ("cake", "milk"), ("tea", "cake"), ("cake", "tea")}
    assert shopper.profile(catalogue).recent == ["cake", "milk", "tea"]


def test_the_stored_shopper_lists_as_touched_what_a_long_history_touched_first() -> None:
    """What the flow stores for the API (``ShopperState.lists``, the ``seen`` of
    ``reco:user:{user}``) holds every item the shopper's interest keeps, so discover leaves
    out an item touched before the 50 strongest and the 20 latest."""
    shopper = ShopperState("u")
    skus = [f"p{n:02d}" for n in range(INTEREST_ITEMS + HISTORY)]
    catalogue = dict.fromkeys(skus, "shelf")
    for t, sku in enumerate(skus):
        shopper.apply(UserSignal("view", float(t), "s", (sku,)), catalogue)
    lists = shopper.lists(catalogue, 10)
    assert "p00" not in {s for s, _ in shopper.interest.shares()}
    assert "p00" not in lists.recent
    assert set(skus) <= lists.seen


def test_products_missing_from_the_catalogue_neither_pair_nor_enter_the_history() -> None:
    shopper = ShopperState("u")
    catalogue = {"tea": "drinks", "cake": "bakery"}
    out = []
    for t, sku in enumerate(["tea", "ghost", "cake"]):
        out = shopper.apply(UserSignal("view", float(t), "s", (sku,)), catalogue).pairs
    formed = {(item, other) for item, (_, counts) in out for other, _w in counts}
    assert formed == {("tea", "cake"), ("cake", "tea")}
    assert shopper.history == ["cake", "tea"]


def test_neighbour_state_is_bounded_and_normalised() -> None:
    item = ItemNeighbours()
    published = None
    for n in range(20 * NEIGHBOURS):
        published = item.add([(f"x{n % (10 * NEIGHBOURS)}", 1.0 + (n % 7 == 0))]) or published
    assert len(item.similarity.co.weights) <= 4 * NEIGHBOURS
    assert published is not None
    assert len(published) == NEIGHBOURS
    assert all(0 < w <= 1 for _, w in published)
    assert sum(w for _, w in published) <= 1.0


def test_recent_pairs_outweigh_old_ones() -> None:
    near = CoOccurrence()
    for _ in range(50):
        near.add("old", 1.0)
    for _ in range(3000):
        near.add(f"other{_ % 40}", 1.0)
    for _ in range(50):
        near.add("new", 1.0)
    weights = dict(near.similar())
    assert weights.get("new", 0.0) > weights.get("old", 0.0)


def test_damping_by_popularity() -> None:
    assert damped({"a": 0.5}, {"a": 100.0}, 0.0) == {"a": 0.5}
    assert damped({"a": 0.5, "b": 0.5}, {"a": 100.0}, 0.5) == {"a": 0.05, "b": 0.5}
    # a neighbour missing from the (bounded) popularity list counts as the floor given
    assert damped({"a": 0.5, "b": 0.5}, {"a": 100.0}, 0.5, floor=25.0) == {"a": 0.05, "b": 0.1}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from("uvw"), st.sampled_from("abcde"), st.sampled_from(KINDS)),
        min_size=100,  # past the first updates, when every one is published
        max_size=300,
    ),
    st.lists(st.integers(1, 40), min_size=1, max_size=20),
)
def test_coalesced_batches_publish_what_single_updates_publish_last(
    events: list[tuple[str, str, str]], sizes: list[int]
) -> None:
    """The flow hands the co-occurrence step one message per item and batch
    (``coalesce_pairs``): whatever the batch boundaries, each item's state and the last
    neighbour list it publishes are those of one update per interaction."""
    catalogue = dict.fromkeys("abcde", "c")
    shoppers: dict[str, ShopperState] = {}
    outputs = []
    for t, (user, sku, kind) in enumerate(events):
        state = shoppers.setdefault(user, ShopperState(user))
        outputs.append(state.apply(UserSignal(kind, float(t), "s", (sku,)), catalogue))  # type: ignore[arg-type]
    single: dict[str, ItemNeighbours] = {}
    single_last: dict[str, list[tuple[str, float]]] = {}
    for out in outputs:
        for item, (_, counts) in out.pairs:
            top = single.setdefault(item, ItemNeighbours()).add(counts)
            if top is not None:
                single_last[item] = top
    batched: dict[str, ItemNeighbours] = {}
    batched_last: dict[str, list[tuple[str, float]]] = {}
    start, n = 0, 0
    while start < len(outputs):
        end = start + sizes[n % len(sizes)]
        for item, (_, each) in coalesce_pairs(outputs[start:end]):
            top = batched.setdefault(item, ItemNeighbours()).add_each(each)
            if top is not None:
                batched_last[item] = top
        start, n = end, n + 1
    assert batched_last == single_last
    assert batched == single
