"""Recommendations learned online: two lists per shopper, from what they and everyone did.

*Buy again / continue* (:func:`again`) holds the shopper's own items: a decayed count of
their interactions per item (views, carts, wishlists, purchases), most recent first among
equals. Grocery shoppers come back to the same products.

*Discover* (:func:`discover`) holds items the shopper has **not** interacted with, scored
by a blend of two sources, each normalised to a distribution over the items left: the
neighbours of the items in their history (item–item similarity learned from every shopper's
history, :mod:`online_models.similarity`), each history item weighted by how recent it is;
and the best sellers of the shopper's strongest categories, weighted by the shopper's share
of each (:data:`CATEGORY_MIX` against the neighbours: a new shopper has a useful list after
the first view). The most popular items fill what is left. :func:`mixed` puts buy again
first and keeps :data:`DISCOVER_SLOTS` places for discover.

>>> interest = DecayedWeights(decay=1.0, capacity=10)
>>> for item in ["tea", "tea", "milk"]:
...     interest.add(item, 1.0)
>>> [(item, round(w, 2)) for item, w in interest.shares(2)]
[('tea', 0.67), ('milk', 0.33)]
>>> profile = Profile(interest.shares(), [("drinks", 1.0)], ["milk", "tea"])
>>> [s for s, _ in again(profile, 5)]
['tea', 'milk']
>>> near = {"milk": {"cake": 0.5, "tea": 0.4}, "tea": {"lemon": 0.8}}
>>> ranked, origin = discover(profile, {"drinks": [("coffee", 5.0), ("tea", 5.0)]}, near,
...                           [("bread", 9.0)], k=4)
>>> [s for s, _ in ranked], origin
(['coffee', 'lemon', 'cake', 'bread'], 'similar')
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from operator import itemgetter

from schemas.serving import CandidateSource, DiscoverOrigin

NEIGHBOURS = 50  # neighbours kept (and published) per item
DECAY = 0.999  # per update of one item's neighbour list
INTEREST_DECAY = 0.99  # per interaction of the shopper
INTEREST_ITEMS = 50
PROFILE_ITEMS = 20  # interest items a shopper's profile carries (the buy-again candidates)
PROFILE_CATEGORIES = 3
HISTORY = 20  # distinct items of a shopper's history, newest first
DISCOVER_DEPTH = 10  # history items whose neighbours are discover candidates
RECENCY = 0.8  # weight of the i-th most recent history item's neighbours is RECENCY**i
CATEGORY_MIX = 0.6  # weight of the category source against the neighbours' (weight 1)
CATEGORY_ITEMS = 100  # best sellers read per category
FACTOR_MIX = 0.6  # weight of the factor source (online_models.factors), when there is one
FALLBACK_WEIGHT = 0.001  # popular items rank after every other candidate
DISCOVER_SLOTS = 2  # places of a mixed list kept for discover (when it has new items)
AGAIN_POPULARITY = 0.5  # buy again is ordered by share × popularity**this (likely_again)

Scored = list[tuple[str, float]]
Candidate = tuple[str, float, CandidateSource]  # (sku, score, where it came from)
_WEIGHT = itemgetter(1)


def _best_first(entry: tuple[str, float]) -> tuple[float, str]:
    return -entry[1], entry[0]


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
            self.weights = dict(self._strongest(2 * self.capacity))

    def _strongest(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` heaviest ``(item, stored weight)``, heaviest first, ties in insertion
        order: what ``heapq.nlargest(n, ..., key=weight)`` returns, by one C-level sort (a
        few hundred items: several times faster than the heap with a Python key)."""
        return sorted(self.weights.items(), key=_WEIGHT, reverse=True)[:n]

    def top(self, n: int | None = None) -> Scored:
        scale = self.scale
        return [(k, v / scale) for k, v in self._strongest(n or self.capacity)]

    def shares(self, n: int | None = None) -> Scored:
        """The top ``n`` items with their share of the total weight."""
        total = sum(self.weights.values()) or 1.0
        return [(k, v / total) for k, v in self._strongest(n or self.capacity)]


def new_interest() -> DecayedWeights:
    return DecayedWeights(decay=INTEREST_DECAY, capacity=INTEREST_ITEMS)


def remember(history: list[str], sku: str, size: int = HISTORY) -> None:
    """Move ``sku`` to the front of ``history`` (distinct items, newest first), bounded.

    >>> h = ["b", "a"]
    >>> remember(h, "a"); remember(h, "c", size=2); h
    ['c', 'a']
    """
    if sku in history:
        history.remove(sku)
    history.insert(0, sku)
    del history[size:]


@dataclass(frozen=True, slots=True)
class Profile:
    """What the lists are built from (plain values, cheap to send between workers)."""

    items: Scored  # own interest: (sku, share), strongest first
    categories: Scored  # (category, share), strongest first
    recent: list[str]  # distinct items of the history, newest first
    seen: frozenset[str] = frozenset()  # items known touched (Profile.of: every item it keeps)

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
        # Every item the decayed interest still holds, not only its strongest: discover is
        # for items the shopper has not interacted with, and a shopper with a long history
        # (more than INTEREST_ITEMS items) would otherwise be shown the items they touched
        # longer ago. Bounded: at most 4 × INTEREST_ITEMS + HISTORY items.
        seen = frozenset(interest.weights) | frozenset(recent)
        return cls(items[:PROFILE_ITEMS], top, list(recent), seen)

    def __post_init__(self) -> None:  # every item of the profile counts as seen
        own = {s for s, _ in self.items}.union(self.recent)
        if not own <= self.seen:
            object.__setattr__(self, "seen", self.seen | own)

    def has_seen(self, sku: str) -> bool:
        return sku in self.seen


def again(profile: Profile, k: int = 10) -> Scored:
    """The shopper's own items by interest share; among equals the more recent first."""
    position = {sku: i for i, sku in enumerate(profile.recent)}
    ordered = sorted(
        profile.items, key=lambda kv: (-round(kv[1], 9), position.get(kv[0], len(position)), kv[0])
    )
    return [(s, round(v, 6)) for s, v in ordered[:k]]


def likely_again(
    own: Sequence[tuple[str, float]], popularity: Mapping[str, float], floor: float = 1.0
) -> Scored:
    """Buy again ordered by how likely each item is in the shopper's next order: their share
    of it × its popularity (at least 1; ``floor`` for an item ``popularity`` does not list)
    to the power :data:`AGAIN_POPULARITY`. Each item keeps its share as its score.

    Why: the share says how often the shopper came to the item, the popularity how often
    anyone who comes to it takes it; of two items the shopper touched alike, the one
    everybody buys is the likelier purchase (docs/recommendations.md, "Buy again ordered by
    popularity").

    >>> likely_again([("tea", 0.5), ("jam", 0.3), ("salt", 0.2)], {"jam": 9.0, "tea": 1.0})
    [('jam', 0.3), ('tea', 0.5), ('salt', 0.2)]
    """
    if not popularity:
        return list(own)
    ranked = sorted(
        enumerate(own),
        key=lambda e: (
            -e[1][1] * max(1.0, popularity.get(e[1][0], floor)) ** AGAIN_POPULARITY,
            e[0],
        ),
    )
    return [entry for _, entry in ranked]


def discover(
    profile: Profile,
    category_popular: Mapping[str, Sequence[tuple[str, float]]],
    neighbours: Mapping[str, Mapping[str, float]],
    popular: Sequence[tuple[str, float]],
    k: int = 10,
) -> tuple[Scored, DiscoverOrigin]:
    """Top-``k`` items the shopper has not interacted with, and where the best one came from.

    ``neighbours`` maps an item to its similar items' weights (already normalised);
    ``category_popular`` maps a category to its most popular items with their popularity;
    ``popular`` is the fallback, most popular first. The neighbours of the history (each
    history item weighted :data:`RECENCY` ``**i``) and the category best sellers (each
    weighted by the shopper's share of its category) are blended (:func:`blend`). The origin
    is ``similar`` (neighbours of the history), ``category`` or ``popularity``.
    """
    similar, by_category = sources(profile, category_popular, neighbours)
    origin: DiscoverOrigin = "similar" if similar else "category" if by_category else "popularity"
    found = ranked_candidates(profile, similar, by_category, popular, k)
    return [(s, v) for s, v, _ in found], origin


def discover_candidates(
    profile: Profile,
    category_popular: Mapping[str, Sequence[tuple[str, float]]],
    neighbours: Mapping[str, Mapping[str, float]],
    popular: Sequence[tuple[str, float]],
    k: int = 10,
) -> list[Candidate]:
    """:func:`discover`'s top-``k`` with each item's source: the one that gave it the larger
    part of its blended score (``similar`` or ``category``), or ``popular`` for the fallback.

    >>> profile = Profile([("tea", 1.0)], [("drinks", 1.0)], ["tea"])
    >>> discover_candidates(profile, {"drinks": [("coffee", 1.0)]}, {"tea": {"lemon": 1.0}},
    ...                     [("bread", 9.0)], k=3)
    [('lemon', 0.625, 'similar'), ('coffee', 0.375, 'category'), ('bread', 0.0009, 'popular')]
    """
    similar, by_category = sources(profile, category_popular, neighbours)
    return ranked_candidates(profile, similar, by_category, popular, k)


def sources(
    profile: Profile,
    category_popular: Mapping[str, Sequence[tuple[str, float]]],
    neighbours: Mapping[str, Mapping[str, float]],
) -> tuple[dict[str, float], dict[str, float]]:
    """The unseen neighbours of the history and the unseen best sellers of the categories."""
    seen = profile.seen
    similar: dict[str, float] = {}
    for i, item in enumerate(profile.recent[:DISCOVER_DEPTH]):
        weight = RECENCY**i
        for other, w in neighbours.get(item, {}).items():
            if other not in seen:
                similar[other] = similar.get(other, 0.0) + weight * w
    by_category: dict[str, float] = {}
    for cat, share in profile.categories:
        for sku, w in islice(category_popular.get(cat, ()), CATEGORY_ITEMS):
            if sku not in seen:
                by_category[sku] = by_category.get(sku, 0.0) + share * w
    return similar, by_category


def ranked_candidates(
    profile: Profile,
    similar: dict[str, float],
    by_category: dict[str, float],
    popular: Sequence[tuple[str, float]],
    k: int,
    factored: Mapping[str, float] | None = None,
) -> list[Candidate]:
    """:func:`discover_candidates` from the two sources as :func:`sources` gives them, and
    the factor source (``online_models.factors.factor_source``) as a third when given. Each
    item is labelled with the source that gave the largest part of its score (``similar``,
    ``factors``, ``category``; ties in that order)."""
    factored = factored or {}
    weighted = source_weights(similar, by_category, factored)
    parts = scales(weighted)
    ranked = best(blend(weighted, parts), k)
    out: list[Candidate] = []
    for sku, v in ranked:
        from_similar = parts[0] * similar.get(sku, 0.0)
        from_factors = parts[2] * factored.get(sku, 0.0) if factored else 0.0
        from_category = parts[1] * by_category.get(sku, 0.0)
        source: CandidateSource = "similar"
        if from_factors > from_similar and from_factors >= from_category:
            source = "factors"
        elif from_category > max(from_similar, from_factors):
            source = "category"
        out.append((sku, round(v, 6), source))
    have = {s for s, _ in ranked}
    for sku, weight in popular:
        if len(out) >= k:
            break
        if sku not in have and not profile.has_seen(sku):
            out.append((sku, round(FALLBACK_WEIGHT * weight / (1.0 + weight), 6), "popular"))
            have.add(sku)
    return out


def best(scores: Mapping[str, float], k: int) -> Scored:
    """The ``k`` best of ``scores``, highest first, ties by sku: ``sorted(scores.items(),
    key=(-score, sku))[:k]``. Only the items scoring at least the ``k``-th highest score can
    be among them, so only those are sorted by that Python key; the scores alone sort in C.
    A discover blend holds some 600 items and the list keeps 10: about 4 times faster than
    sorting them all (docs/scaling.md, "The served-list log and the discover top").

    >>> best({"a": 0.2, "b": 0.5, "c": 0.2, "d": 0.1}, 3)
    [('b', 0.5), ('a', 0.2), ('c', 0.2)]
    """
    items: Iterable[tuple[str, float]] = scores.items()
    if len(scores) > k > 0:
        cut = sorted(scores.values(), reverse=True)[k - 1]
        items = [entry for entry in items if entry[1] >= cut]
    return sorted(items, key=_best_first)[:k]


def source_weights(
    similar: Mapping[str, float],
    by_category: Mapping[str, float],
    factored: Mapping[str, float] | None = None,
) -> list[tuple[float, Mapping[str, float]]]:
    """The discover sources with their weights in the blend (neighbours 1, categories
    :data:`CATEGORY_MIX`, and the factor source :data:`FACTOR_MIX` when there is one)."""
    weighted: list[tuple[float, Mapping[str, float]]] = [
        (1.0, similar),
        (CATEGORY_MIX, by_category),
    ]
    if factored:
        weighted.append((FACTOR_MIX, factored))
    return weighted


def scales(sources: Sequence[tuple[float, Mapping[str, float]]]) -> list[float]:
    """What :func:`blend` multiplies each source's scores by (0 for an empty source)."""
    masses = [sum(s.values()) if w > 0 else 0.0 for w, s in sources]
    total = sum(w for (w, _), mass in zip(sources, masses, strict=True) if mass > 0)
    return [
        w / total / mass if mass > 0 else 0.0 for (w, _), mass in zip(sources, masses, strict=True)
    ]


def blend(
    sources: Sequence[tuple[float, Mapping[str, float]]], shares: Sequence[float] | None = None
) -> dict[str, float]:
    """The weighted sum of ``sources`` (weight, scores), each scaled to sum to 1 first, so
    that a weight is the source's share of the blend whatever its scores' scale; the result
    sums to 1 over the sources that have scores. ``shares`` is :func:`scales` of ``sources``
    when the caller has it already (each is a pass over a source's scores).

    >>> mixture = blend([(1.0, {"a": 3, "b": 1}), (0.5, {"b": 2, "c": 2})])
    >>> {k: round(v, 3) for k, v in mixture.items()}
    {'a': 0.5, 'b': 0.333, 'c': 0.167}
    >>> blend([(1.0, {}), (0.5, {"c": 2.0})])
    {'c': 1.0}
    """
    out: dict[str, float] = {}
    if shares is None:
        shares = scales(sources)
    for (_, scores), share in zip(sources, shares, strict=True):
        if share > 0:
            for sku, v in scores.items():
                out[sku] = out.get(sku, 0.0) + share * v
    return out


def mixed(again_list: Scored, discover_list: Scored, k: int = 10) -> Scored:
    """Buy again first, then discover, without repeats, ``k`` long: buy again fills at most
    ``k - DISCOVER_SLOTS`` places, so the list always shows new items when discover has
    them; places neither fills go to the rest of buy again.

    Why buy again first: a shopper's own items are likelier in the next order than the best
    of discover's (on the simulator the 5th to 10th buy-again items are each bought about as
    often as discover's first; docs/recommendations.md, "The mixed list").

    >>> mixed([("a", 1.0), ("b", 0.5)], [("x", 0.3), ("a", 0.2), ("y", 0.1)], k=4)
    [('a', 1.0), ('b', 0.5), ('x', 0.3), ('y', 0.1)]
    >>> mixed([(s, 1.0) for s in "abcde"], [("x", 0.3), ("y", 0.1)], k=4)
    [('a', 1.0), ('b', 1.0), ('x', 0.3), ('y', 0.1)]
    >>> mixed([(s, 1.0) for s in "abcde"], [("a", 0.3)], k=4)  # nothing new to show
    [('a', 1.0), ('b', 1.0), ('c', 1.0), ('d', 1.0)]
    """
    own = {sku for sku, _ in again_list}
    found = [entry for entry in discover_list if entry[0] not in own]
    first = again_list[: max(0, k - min(DISCOVER_SLOTS, len(found)))]
    out: Scored = []
    have: set[str] = set()
    for entry in chain(first, found, again_list):
        if len(out) >= k:
            break
        if entry[0] not in have:
            out.append(entry)
            have.add(entry[0])
    return out
