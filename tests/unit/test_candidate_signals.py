"""What the discover sources say of each candidate (online_models.candidate_signals)."""

from __future__ import annotations

import random

import pytest

from online_models.candidate_signals import NO_SIGNALS, SIGNAL_FEATURES, candidate_signals
from online_models.ranking import RANKER_FEATURES, ranker_features
from online_models.recommender import (
    DISCOVER_DEPTH,
    Profile,
    discover_candidates,
    ranked_candidates,
    sources,
)


def _shop(
    seed: int,
) -> tuple[
    Profile, dict[str, list[tuple[str, float]]], dict[str, dict[str, float]], dict[str, float]
]:
    rng = random.Random(seed)
    skus = [f"P{i:03d}" for i in range(120)]
    neighbours = {s: {n: rng.random() for n in rng.sample(skus, 15)} for s in skus}
    popularity = {s: float(rng.randint(1, 500)) for s in skus}
    by_category = {
        c: sorted(((s, popularity[s]) for s in skus[i::3]), key=lambda kv: -kv[1])
        for i, c in enumerate(("a", "b", "c"))
    }
    recent = rng.sample(skus, 12)
    profile = Profile([(s, 1 / 12) for s in recent], [("a", 0.7), ("c", 0.3)], recent)
    return profile, by_category, neighbours, popularity


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_two_parts_add_up_to_the_discover_score_and_name_its_source(seed: int) -> None:
    profile, by_category, neighbours, popularity = _shop(seed)
    popular = sorted(popularity.items(), key=lambda kv: -kv[1])
    found = discover_candidates(profile, by_category, neighbours, popular, 100)
    signals = candidate_signals(
        profile, by_category, neighbours, popularity, [sku for sku, _, _ in found]
    )
    similar, category = (
        SIGNAL_FEATURES.index("similar_part"),
        SIGNAL_FEATURES.index("category_part"),
    )
    for sku, score, source in found:
        parts = signals[sku][similar], signals[sku][category]
        if source == "popular":
            assert parts == (0.0, 0.0)
            continue
        assert sum(parts) == pytest.approx(score, abs=1e-6)
        assert source == ("similar" if parts[0] >= parts[1] else "category")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_with_factors_the_three_parts_add_up_to_the_served_score_and_name_its_source(
    seed: int,
) -> None:
    """The parts are scaled as the served three-source blend scales them: a candidate's
    parts sum to its discover score, and its label is the source of the largest part."""
    profile, by_category, neighbours, popularity = _shop(seed)
    rng = random.Random(seed)
    factored = {sku: rng.random() for sku in rng.sample(sorted(popularity), 60)}
    popular = sorted(popularity.items(), key=lambda kv: -kv[1])
    similar, from_categories = sources(profile, by_category, neighbours)
    found = ranked_candidates(profile, similar, from_categories, popular, 100, factored)
    skus = [sku for sku, _, _ in found]
    signals = candidate_signals(profile, by_category, neighbours, popularity, skus, factored)
    names = ("similar_part", "factor_part", "category_part")
    columns = [SIGNAL_FEATURES.index(name) for name in names]
    labels = {source for _, _, source in found}
    assert {"similar", "factors", "category"} <= labels
    for sku, score, source in found:
        parts = [signals[sku][i] for i in columns]
        if source == "popular":
            assert parts == [0.0, 0.0, 0.0]
            continue
        assert sum(parts) == pytest.approx(score, abs=1e-6)
        assert source == ("similar", "factors", "category")[parts.index(max(parts))]
    # each candidate's factor rank is its place in the factor source, 0 outside it
    rank = SIGNAL_FEATURES.index("factor_rank")
    ordered = sorted(factored, key=lambda sku: (-factored[sku], sku))
    for sku in skus:
        place = ordered.index(sku) if sku in factored else None
        assert signals[sku][rank] == (0.0 if place is None else 1.0 / (1 + place))


def test_without_factors_the_factor_columns_are_zero() -> None:
    profile, by_category, neighbours, popularity = _shop(4)
    skus = sorted(popularity)
    plain = candidate_signals(profile, by_category, neighbours, popularity, skus)
    empty = candidate_signals(profile, by_category, neighbours, popularity, skus, {})
    assert plain == empty
    for name in ("factor_part", "factor_rank"):
        assert all(v[SIGNAL_FEATURES.index(name)] == 0.0 for v in plain.values())


def test_links_count_the_recent_items_that_list_a_candidate() -> None:
    near = {"r1": {"x": 0.2, "y": 0.9}, "r2": {"x": 0.5}, "old": {"x": 1.0}}
    recent = ["r1", "r2", *(f"pad{i}" for i in range(DISCOVER_DEPTH - 2)), "old"]
    profile = Profile([], [], recent)
    found = candidate_signals(profile, {}, near, {"x": 9.0}, ["x", "y", "z"])
    x = dict(zip(SIGNAL_FEATURES, found["x"], strict=True))
    # "old" is past the recent items whose neighbours are candidates: it does not count.
    assert (x["history_links"], x["latest_link"], x["strongest_link"]) == (2.0, 1.0, 0.5)
    # x scores 0.2 + 0.8 * 0.5 = 0.6 from the neighbours, y 0.9: y is first, x second
    assert (x["similar_rank"], found["y"][SIGNAL_FEATURES.index("similar_rank")]) == (0.5, 1.0)
    assert x["item_popularity"] == pytest.approx(2.302585, abs=1e-6)
    assert found["z"] == NO_SIGNALS


def test_a_row_carries_the_signals_in_the_rankers_columns() -> None:
    signals = tuple(float(i + 1) for i in range(len(SIGNAL_FEATURES)))
    row = dict(
        zip(RANKER_FEATURES, ranker_features({}, {}, 1.0, 0, None, "s", None, signals), strict=True)
    )
    assert tuple(row[name] for name in SIGNAL_FEATURES) == signals
    plain = dict(zip(RANKER_FEATURES, ranker_features({}, {}, 1.0, 0, None, "s"), strict=True))
    assert all(plain[name] == 0.0 for name in SIGNAL_FEATURES)
