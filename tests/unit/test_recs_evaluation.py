"""The recs benchmark's figures from known lists: the discover list's reach beyond its top-10
and the users whom only item-kNN finds."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from api.discover import profile_of
from benchmarks.recs import Lists, evaluate
from benchmarks.recs_data import Interaction, Split, Target
from benchmarks.recs_ranker import POOL, SERVED_DEPTH, Ranked, Served, held_out, labelled
from benchmarks.recs_replay import STORED, served_profile
from flows.records import UserSignal
from flows.steps import ShopperState
from online_models.ranking import RANKER_FEATURES
from schemas.serving import StoredShopper

FILLER = [f"f{n}" for n in range(10)]


VIEWS = [("u0", "a"), ("u0", "b"), ("u1", "a"), ("u1", "b"), ("u1", "c"), ("u2", "a")]
SPLIT = Split(
    [Interaction(user, sku, float(t), "view") for t, (user, sku) in enumerate(VIEWS)],
    [Target("u0", "c", "discover"), Target("u2", "c", "discover")],
)
LISTS = {
    "u0": Lists([], [*FILLER, "c"]),  # the target 11th: reached, not in the top-10
    "u2": Lists([], ["c", *FILLER]),  # the target first
}


def test_reach_and_item_knn_only_are_counted_per_discover_user() -> None:
    figures = evaluate(SPLIT, LISTS, Ranked({}, {}))
    assert figures["hr_at_10_item_knn"] == 1.0  # c is a's and b's only unseen neighbour
    assert figures["hr_at_10_discover"] == 0.5
    assert figures["recall_at_100_discover"] == 1.0
    assert figures["hr_at_10_item_knn_only"] == 0.5  # u0 only


def test_the_headline_is_the_ranked_list_when_a_ranker_was_trained() -> None:
    ranked = {
        SERVED_DEPTH: {"u0": ["c", *FILLER[:9]], "u2": ["c", *FILLER[:9]]},
        POOL: {"u0": FILLER, "u2": ["c"]},
    }
    figures = evaluate(SPLIT, LISTS, Ranked(ranked, {}))
    assert figures["hr_at_10_discover_unranked"] == 0.5
    assert figures["hr_at_10_discover_ranked"] == figures["hr_at_10_discover"] == 1.0
    assert figures["discover_vs_best_baseline"] == figures["discover_ranked_vs_best_baseline"]
    assert figures["discover_unranked_vs_best_baseline"] == 0.5
    assert figures[f"hr_at_10_discover_ranked_from_{POOL}"] == 0.5
    assert figures["discover_served"].startswith("ranked")
    assert evaluate(SPLIT, LISTS, Ranked({}, {}))["discover_served"].startswith("unranked")


def test_a_served_list_teaches_what_was_taken_next_against_what_was_shown_and_not() -> None:
    rows = np.arange(3 * len(RANKER_FEATURES), dtype=np.float32).reshape(3, -1)
    shown = [Served("u0", ["a", "b", "c"], rows), Served("u1", ["a", "b", "c"], rows)]
    after = [
        Interaction("u0", "c", 1.0, "add_to_cart"),
        Interaction("u0", "a", 2.0, "view"),  # looked at, not taken: a negative
        Interaction("u0", "z", 3.0, "purchase"),  # not shown
        Interaction("u1", "b", 4.0, "view"),
    ]
    x, y, lists = labelled(shown, after)
    assert lists == 1  # u1 only looked at what it was shown: no query
    assert y.tolist() == [0, 0, 1]  # a and b shown and not taken: real negatives
    assert np.array_equal(x, rows)


def test_a_ranker_the_order_gate_refused_is_measured_but_not_the_headline() -> None:
    ranked = {
        SERVED_DEPTH: {"u0": ["c", *FILLER[:9]], "u2": ["c", *FILLER[:9]]},
        POOL: {"u0": FILLER, "u2": ["c"]},
    }
    figures = evaluate(SPLIT, LISTS, Ranked(ranked, {}, passed=False))
    assert figures["hr_at_10_discover"] == figures["hr_at_10_discover_unranked"] == 0.5
    assert figures["hr_at_10_discover_ranked"] == 1.0
    assert figures["discover_served"] == "unranked (the order gate refused the ranker)"


def test_the_gate_holds_out_what_the_api_ranks_of_lists_with_a_taken_item() -> None:
    rows = np.arange(30 * len(RANKER_FEATURES), dtype=np.float32).reshape(30, -1)
    skus = [f"s{n}" for n in range(30)]
    shown = [Served("u0", skus, rows), Served("u1", skus, rows), Served("u2", skus, rows)]
    after = [
        Interaction("u0", "s3", 1.0, "purchase"),
        Interaction("u0", "s1", 1.5, "view"),  # looked at, not taken
        Interaction("u1", "s25", 2.0, "add_to_cart"),  # beyond what the API ranks: no query
        Interaction("u2", "s4", 3.0, "view"),  # only looked at: no query
    ]
    holdout = held_out(shown, after)
    assert holdout.queries == 1
    assert holdout.positives == [{"s3"}]
    assert holdout.labels.tolist() == [int(n == 3) for n in range(SERVED_DEPTH)]
    assert np.array_equal(holdout.features, rows[:SERVED_DEPTH])


def test_the_replay_builds_discover_from_what_the_api_reads_of_a_shopper() -> None:
    categories = {f"p{n}": f"c{n % 4}" for n in range(30)}
    shopper = ShopperState("u")
    for n in range(30):
        shopper.apply(UserSignal("view", float(n), "s", (f"p{n % 25}",)), categories)
    lists = shopper.lists(categories, STORED)
    stored = StoredShopper.model_validate_json(
        StoredShopper.encode(
            "u", lists.again, lists.recent, sorted(lists.seen), lists.categories, datetime.now(UTC)
        )
    )
    api = profile_of(stored)
    replayed = served_profile(shopper, categories)
    # the factor source folds the shopper in from these items: the stored buy again, not the
    # state's longer profile
    assert replayed.items == api.items
    assert len(api.items) == STORED
    assert (replayed.recent, replayed.seen) == (api.recent, api.seen)
    assert [tuple(c) for c in replayed.categories] == [tuple(c) for c in api.categories]
