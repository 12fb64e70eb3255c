"""Item–item similarity learned online, and the shopper history it is learned from."""

from __future__ import annotations

import pytest

from flows.records import UserSignal
from flows.steps import ItemNeighbours, ShopperState
from online_models.recommender import HISTORY, NEIGHBOURS, remember
from online_models.similarity import (
    BACKWARD,
    PAIR_DECAY,
    PAIR_DEPTH,
    CoOccurrence,
    damped,
    pairs,
)


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
