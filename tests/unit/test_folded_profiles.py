"""The factor source kept per profile (api/discover.py FoldedProfiles): always what
factor_source computes now for the same profile and factors."""

from __future__ import annotations

import numpy as np

from api.discover import FoldedProfiles
from online_models.factors import ItemFactors, factor_source, profile_weights
from online_models.recommender import Profile

SKUS = [f"s{i}" for i in range(40)]


def items(seed: int) -> ItemFactors:
    return ItemFactors(SKUS, np.random.default_rng(seed).normal(size=(len(SKUS), 4)))


def profile(recent: list[str], seen: set[str]) -> Profile:
    return Profile([(recent[0], 1.0)], [], recent, frozenset(seen | set(recent)))


def now(factors: ItemFactors, p: Profile) -> dict[str, float]:
    """What the list would get without the memo."""
    return factor_source(factors, profile_weights(p.items, p.recent), p.seen)


def test_a_profile_met_again_gets_the_source_computed_for_it() -> None:
    folds, factors = FoldedProfiles(), items(1)
    first = folds.source(factors, profile(["s1", "s2"], {"s3"}))
    again = folds.source(factors, profile(["s1", "s2"], {"s3"}))  # an equal profile, re-read
    assert again is first
    assert list(again.items()) == list(now(factors, profile(["s1", "s2"], {"s3"})).items())


def test_a_changed_profile_is_computed_afresh() -> None:
    folds, factors = FoldedProfiles(), items(2)
    folds.source(factors, profile(["s1", "s2"], set()))
    for changed in (
        profile(["s4", "s1", "s2"], set()),  # a new recent item: other weights
        profile(["s1", "s2"], {"s5"}),  # the same weights, another seen item
        profile(["s2", "s1"], set()),  # the same items, the other one latest
    ):
        found = folds.source(factors, changed)
        assert list(found.items()) == list(now(factors, changed).items())
    assert "s5" not in folds.source(factors, profile(["s1", "s2"], {"s5"}))


def test_new_factors_drop_every_kept_source() -> None:
    folds, old, new = FoldedProfiles(), items(3), items(4)
    p = profile(["s1", "s2"], set())
    before = folds.source(old, p)
    after = folds.source(new, p)
    assert list(after.items()) == list(now(new, p).items())
    assert after != before
    assert folds.source(None, p) == {}


def test_the_kept_sources_are_bounded() -> None:
    folds, factors = FoldedProfiles(max_entries=3), items(5)
    first = folds.source(factors, profile(["s0"], set()))
    for i in range(1, 4):
        folds.source(factors, profile([f"s{i}"], set()))
    assert folds.source(factors, profile(["s0"], set())) is not first  # the oldest went
    assert len(folds) == 3
