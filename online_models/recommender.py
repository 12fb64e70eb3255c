"""Recommendations learned online: each shopper's own interests, their categories' best
sellers, and item-to-item co-interactions, with a popularity fallback.

A shopper's **interest** is a decayed count of their interactions per item (views, carts,
wishlists, purchases), bounded to the strongest few; shoppers come back to what they like,
so it is the strongest signal. Their **categories** (interest summed by category) pull in
each category's most popular items. **Co-occurrence** (items interacted with one after the
other, by anyone) adds neighbours of the shopper's latest items. Shoppers with no history
get the most popular items.

>>> interest = DecayedWeights(decay=1.0, capacity=10)
>>> for item in ["tea", "tea", "milk"]:
...     interest.add(item, 1.0)
>>> [(item, round(w, 2)) for item, w in interest.shares(2)]
[('tea', 0.67), ('milk', 0.33)]
>>> profile = Profile(interest.shares(), [("drinks", 1.0)], ["milk"])
>>> ranked, source = recommend(profile, {"drinks": [("coffee", 5.0), ("tea", 5.0)]},
...                            {"milk": {"cake": 2.0}}, [("bread", 9.0)], k=5)
>>> [s for s, _ in ranked], source
(['tea', 'milk', 'cake', 'coffee', 'bread'], 'personal')
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from schemas.serving import StreamingSource

NEIGHBOURS = 30
# An interaction pairs with this many of the shopper's latest items (the recent list's
# length): 3 gave the same hit rate in benchmarks/quality.py as 1, for 3× the pairs.
PAIR_DEPTH = 1
DECAY = 0.999  # per update of one item's neighbour list
INTEREST_DECAY = 0.99  # per interaction of the shopper
INTEREST_ITEMS = 50
PROFILE_ITEMS = 20  # interest items a shopper's profile carries to the ranker
PROFILE_CATEGORIES = 3
CATEGORY_WEIGHT = 0.5  # weight of the category best sellers against the shopper's own items
CATEGORY_ITEMS = 10
NEIGHBOUR_WEIGHT = 0.3
RECENCY = 0.7  # weight of the i-th most recent item's neighbours is RECENCY**i
FALLBACK_WEIGHT = 0.001  # popular items rank after every other candidate

Scored = list[tuple[str, float]]


@dataclass
class DecayedWeights:
    """Weights per item that decay by ``decay`` at every update, keeping the strongest.

    At most ``4 × capacity`` items are kept between prunings (down to ``2 × capacity``).
    """

    decay: float = DECAY
    capacity: int = NEIGHBOURS
    weights: dict[str, float] = field(default_factory=dict)
    scale: float = 1.0  # lazy decay: stored weights are divided by scale

    def add(self, item: str, weight: float) -> None:
        self.scale /= self.decay
        if self.scale > 1e6:  # renormalise now and then
            self.weights = {k: v / self.scale for k, v in self.weights.items()}
            self.scale = 1.0
        self.weights[item] = self.weights.get(item, 0.0) + weight * self.scale
        if len(self.weights) > 4 * self.capacity:
            keep = heapq.nlargest(2 * self.capacity, self.weights.items(), key=lambda kv: kv[1])
            self.weights = dict(keep)

    def top(self, n: int | None = None) -> Scored:
        best = heapq.nlargest(n or self.capacity, self.weights.items(), key=lambda kv: kv[1])
        scale = self.scale
        return [(k, v / scale) for k, v in best]

    def shares(self, n: int | None = None) -> Scored:
        """The top ``n`` items with their share of the total weight."""
        total = sum(self.weights.values()) or 1.0
        best = heapq.nlargest(n or self.capacity, self.weights.items(), key=lambda kv: kv[1])
        return [(k, v / total) for k, v in best]


def new_interest() -> DecayedWeights:
    return DecayedWeights(decay=INTEREST_DECAY, capacity=INTEREST_ITEMS)


@dataclass(frozen=True, slots=True)
class Profile:
    """What the ranker knows of one shopper (plain values, cheap to send between workers)."""

    items: Scored  # own interest: (sku, share), strongest first
    categories: Scored  # (category, share), strongest first
    recent: list[str]  # latest items, newest first

    @classmethod
    def of(
        cls, interest: DecayedWeights, categories: Mapping[str, str], recent: list[str]
    ) -> Profile:
        items = interest.shares()
        by_category: dict[str, float] = {}
        for sku, share in items:
            cat = categories.get(sku)
            if cat is not None:
                by_category[cat] = by_category.get(cat, 0.0) + share
        top = heapq.nlargest(PROFILE_CATEGORIES, by_category.items(), key=lambda kv: kv[1])
        return cls(items[:PROFILE_ITEMS], top, recent)


def recommend(
    profile: Profile,
    category_popular: Mapping[str, Sequence[tuple[str, float]]],
    neighbours: Mapping[str, Mapping[str, float]],
    popular: Sequence[tuple[str, float]],
    k: int = 10,
) -> tuple[Scored, StreamingSource]:
    """Top-``k`` (sku, score) for a shopper and where the best candidate came from.

    ``category_popular`` maps a category to its most popular items; ``neighbours`` maps an
    item to its neighbours' weights; ``popular`` is the fallback list, most popular first.
    """
    scores: dict[str, float] = {}
    for sku, share in profile.items:
        scores[sku] = share
    source: StreamingSource = "personal" if scores else "popularity"
    for cat, share in profile.categories:
        best = list(category_popular.get(cat, ()))[:CATEGORY_ITEMS]
        total = sum(w for _, w in best) or 1.0
        for sku, w in best:
            scores[sku] = scores.get(sku, 0.0) + CATEGORY_WEIGHT * share * w / total
    for i, item in enumerate(profile.recent):
        near = neighbours.get(item, {})
        total = sum(near.values()) or 1.0
        for other, w in near.items():
            gain = NEIGHBOUR_WEIGHT * RECENCY**i * w / total
            scores[other] = scores.get(other, 0.0) + gain
    if source == "popularity" and scores:
        source = "co-occurrence"
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    if len(ranked) < k:
        have = {s for s, _ in ranked}
        for sku, weight in popular:
            if sku not in have:
                ranked.append((sku, FALLBACK_WEIGHT * weight))
                have.add(sku)
            if len(ranked) >= k:
                break
    return [(s, round(v, 6)) for s, v in ranked], source
