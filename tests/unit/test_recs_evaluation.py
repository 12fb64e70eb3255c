"""The recs benchmark's figures from known lists: the discover list's reach beyond its top-10
and the users whom only item-kNN finds."""

from __future__ import annotations

from benchmarks.recs import Lists, evaluate
from benchmarks.recs_data import Interaction, Split, Target

FILLER = [f"f{n}" for n in range(10)]


def test_reach_and_item_knn_only_are_counted_per_discover_user() -> None:
    views = [("u0", "a"), ("u0", "b"), ("u1", "a"), ("u1", "b"), ("u1", "c"), ("u2", "a")]
    sent = [Interaction(user, sku, float(t), "view") for t, (user, sku) in enumerate(views)]
    split = Split(sent, [Target("u0", "c", "discover"), Target("u2", "c", "discover")])
    lists = {
        "u0": Lists([], [*FILLER, "c"]),  # the target 11th: reached, not in the top-10
        "u2": Lists([], ["c", *FILLER]),  # the target first
    }
    figures = evaluate(split, lists)
    assert figures["hr_at_10_item_knn"] == 1.0  # c is a's and b's only unseen neighbour
    assert figures["hr_at_10_discover"] == 0.5
    assert figures["recall_at_100_discover"] == 1.0
    assert figures["hr_at_10_item_knn_only"] == 0.5  # u0 only
