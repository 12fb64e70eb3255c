"""The discover list, built when it is asked for from what the flows publish at that moment.

It reads the popularity list (:class:`Popularity`: the API keeps one copy per cache
interval, shared by every shopper) and, for one shopper, one pipelined round trip: the
neighbours of their recent items and their categories' best sellers, except those the API
read for another shopper within the cache interval (:class:`GraphReads`). Each neighbour's
similarity is divided by its popularity (``online_models.similarity.damped``, so that best
sellers do not crowd every list). The popularity list keeps the ``TILLFLOW_POPULARITY_LEN``
most popular products: a neighbour past its end counts as popular as the last one kept, not
as unseen (which would rank the rarest items of a large catalogue above the rest). The
ranking itself is ``online_models.recommender.ranked_candidates`` over ``sources``.

A list is built only as deep as the answer needs: its first ``k`` items are the same
whatever depth it is built to (the ranking sorts every scored item, and the popular items
that top it up are taken in the same order from the same :data:`POPULAR_FALLBACK` best
sellers), so a shallow build costs less and serves the same items.

When the batch job has published item factors (``online_models.factors``: an ``.npz`` beside
the local model copies), the shopper is folded into them from the stored profile and the 100
unseen items their vector scores highest are a third source of the blend (:class:`FactorFile`
follows the file: a new one is loaded at the next check, a broken one leaves the previous in
place). Without the file the list is the two-source blend. The factor source is a function of
the shopper's profile and the published factors alone, so it is kept per profile
(:class:`FoldedProfiles`) and computed again only when either changes: a shopper read again
between their own events gets it back, whatever the shared reads did meanwhile.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog

from api.cache import LastKnown
from infra.clients import AsyncRedis
from online_models.candidate_signals import Signals, signals_of
from online_models.factors import ItemFactors, factor_source, load_factors, profile_weights
from online_models.popularity import counts
from online_models.recommender import (
    CATEGORY_ITEMS,
    DISCOVER_DEPTH,
    Candidate,
    Profile,
    ranked_candidates,
    sources,
)
from online_models.similarity import POPULARITY_DAMPING, damped
from schemas.keys import RedisKeys
from schemas.serving import StoredShopper

V = TypeVar("V")
log = structlog.get_logger(__name__)
DEEPEST = 100  # the deepest discover list the API builds (the ranker's pool for k = 50)
POPULAR_FALLBACK = 4 * DEEPEST + 1  # best sellers a discover list may be topped up from


@dataclass(frozen=True, slots=True)
class Popularity:
    """The popularity list as read at one moment, its scores (``online_models.popularity``)
    turned into counts relative to the least popular product it keeps."""

    ranked: list[tuple[str, float]]  # (sku, relative count), most popular first
    scores: dict[str, float]  # the same, by sku
    reference: float  # the score that counts 1: the least popular kept (past the end: 1)
    # Each item's neighbours damped by this list, and each category's best sellers counted
    # on its scale, with the read of them they come from (:func:`_damped`, :func:`_counted`):
    # shared by every shopper while both reads are kept.
    damped: dict[str, tuple[dict[str, float], dict[str, float]]] = field(
        default_factory=dict, compare=False, repr=False
    )
    counted: dict[str, tuple[list[tuple[str, float]], list[tuple[str, float]]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, scored: list[tuple[str, float]]) -> Popularity:
        """The list from the flows' scores, most popular first."""
        reference = scored[-1][1] if scored else 0.0
        ranked = list(counts(dict(scored), reference).items())
        return cls(ranked, dict(ranked), reference)


class FactorFile:
    """The item factors published at ``path``, loaded again when the file changes (checked
    at most once per ``check_s``); None while there is no file (or no path)."""

    def __init__(self, path: Path | None = None, check_s: float = 0.0) -> None:
        self.path = path
        self.check_s = check_s
        self.items: ItemFactors | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._checked = float("-inf")

    def current(self, now: float) -> ItemFactors | None:
        if self.path is None or now - self._checked < self.check_s:
            return self.items
        self._checked = now
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self.items, self._stamp = None, None
            return None
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.items = load_factors(self.path)
            except Exception as exc:  # noqa: BLE001 - a broken file must not break the lists
                log.error("item factors unreadable", path=str(self.path), error=str(exc))
            else:
                log.info("item factors loaded", path=str(self.path), items=len(self.items.skus))
        return self.items


class FoldedProfiles:
    """Each profile's factor source (``online_models.factors.factor_source``) as last
    computed over the current item factors, by what it is computed from: the profile's
    fold-in weights and seen items. The source is a pure function of those and the factors,
    so a profile met again gets the same dict back (its readers only read it); new factors
    drop every entry. Bounded (``max_entries``, least recently used first out): an entry is
    a profile's ~100 scored items, a few KB.

    >>> import numpy as np
    >>> folds, items = FoldedProfiles(), ItemFactors(["tea", "milk", "jam"], np.eye(3, 2))
    >>> profile = Profile([("tea", 1.0)], [], ["tea"], frozenset({"tea"}))
    >>> first = folds.source(items, profile)
    >>> first, folds.source(items, profile) is first, folds.source(None, profile)
    ({'milk': 0.0, 'jam': 0.0}, True, {})
    """

    def __init__(self, max_entries: int = 4_096) -> None:
        self.max_entries = max_entries
        self.factors: ItemFactors | None = None
        self._found: OrderedDict[
            tuple[tuple[tuple[str, float], ...], frozenset[str]], dict[str, float]
        ] = OrderedDict()

    def source(self, factors: ItemFactors | None, profile: Profile) -> dict[str, float]:
        """The profile's factor source over ``factors`` ({} without factors), computed once
        per distinct fold-in weights and seen items."""
        if factors is None:
            return {}
        if factors is not self.factors:
            self._found.clear()
            self.factors = factors
        weights = profile_weights(profile.items, profile.recent)
        key = (tuple(weights.items()), profile.seen)
        found = self._found.get(key)
        if found is not None:
            self._found.move_to_end(key)
            return found
        found = self._found[key] = factor_source(factors, weights, profile.seen)
        if len(self._found) > self.max_entries:
            self._found.popitem(last=False)
        return found

    def __len__(self) -> int:
        return len(self._found)


@dataclass(frozen=True)
class GraphReads:
    """Each item's neighbours and each category's best sellers as last read, kept for the
    cache interval and shared by every shopper whose discover list reads them, and the item
    factors as last published, with the factor source of each profile met over them."""

    neighbours: LastKnown[dict[str, float]] = field(default_factory=lambda: LastKnown(0.0))
    best_sellers: LastKnown[list[tuple[str, float]]] = field(default_factory=lambda: LastKnown(0.0))
    factors: FactorFile = field(default_factory=FactorFile)
    folds: FoldedProfiles = field(default_factory=FoldedProfiles)

    @classmethod
    def kept_for(cls, ttl_s: float, factors: Path | None = None) -> GraphReads:
        return cls(LastKnown(ttl_s), LastKnown(ttl_s), FactorFile(factors, ttl_s))


def profile_of(stored: StoredShopper) -> Profile:
    """The recommender's profile of a stored shopper."""
    items = [(i.sku, i.score) for i in stored.again]
    return Profile(items, list(stored.categories), list(stored.recent), frozenset(stored.seen))


async def read_popularity(client: AsyncRedis, keys: RedisKeys) -> Popularity:
    """The whole popularity list, one round trip (the flows keep it ``popularity_len``
    long; ``client`` returns bytes)."""
    top = await client.zrevrange(keys.popularity, 0, -1, withscores=True)
    return Popularity.of([(_text(s), float(v)) for s, v in top])


@dataclass(frozen=True, slots=True)
class DiscoverInputs:
    """What one shopper's discover list is built from, as read now, and the two sources
    computed from it once (for the list and for the ranker's signals)."""

    profile: Profile
    neighbours: dict[str, dict[str, float]]  # each recent item's neighbours, damped
    popularity: Popularity
    similar: dict[str, float]  # online_models.recommender.sources
    by_category: dict[str, float]
    factored: dict[str, float]  # online_models.factors.factor_source ({} without factors)

    @classmethod
    def of(
        cls,
        profile: Profile,
        best_sellers: dict[str, list[tuple[str, float]]],
        neighbours: dict[str, dict[str, float]],
        popularity: Popularity,
        factored: dict[str, float],
    ) -> DiscoverInputs:
        similar, by_category = sources(profile, best_sellers, neighbours)
        return cls(profile, neighbours, popularity, similar, by_category, factored)

    def candidates(self, k: int) -> list[Candidate]:
        """The discover top-``k``, each item with its source."""
        popular = self.popularity.ranked[:POPULAR_FALLBACK]
        return ranked_candidates(
            self.profile, self.similar, self.by_category, popular, k, self.factored
        )

    def signals(self, skus: Iterable[str]) -> dict[str, Signals]:
        """What the sources say of each of ``skus`` (the ranker's ``SIGNAL_FEATURES``)."""
        return signals_of(
            self.profile,
            self.similar,
            self.by_category,
            self.neighbours,
            self.popularity.scores,
            skus,
            self.factored,
        )


async def read_discover(
    client: AsyncRedis,
    keys: RedisKeys,
    stored: StoredShopper,
    k: int,
    popularity: Popularity | None = None,
    graph: GraphReads | None = None,
) -> list[Candidate]:
    """The shopper's discover top-``k``, each item with its source (``client`` returns
    bytes); ``popularity`` is read now when not given, and the neighbours and best sellers
    ``graph`` holds fresh are not read again."""
    return (await read_inputs(client, keys, stored, popularity, graph)).candidates(k)


async def read_inputs(
    client: AsyncRedis,
    keys: RedisKeys,
    stored: StoredShopper,
    popularity: Popularity | None = None,
    graph: GraphReads | None = None,
) -> DiscoverInputs:
    """What the shopper's discover list is built from (:func:`read_discover`'s reads)."""
    if popularity is None:
        popularity = await read_popularity(client, keys)
    graph = graph or GraphReads()
    recent = stored.recent[:DISCOVER_DEPTH]
    categories = [c for c, _ in stored.categories]
    now = time.monotonic()
    similar = _fresh(graph.neighbours, recent, now)
    by_category = _fresh(graph.best_sellers, categories, now)
    near_wanted = [sku for sku in recent if sku not in similar]
    best_wanted = [cat for cat in categories if cat not in by_category]
    if near_wanted or best_wanted:
        pipe = client.pipeline(transaction=False)
        for sku in near_wanted:
            pipe.hgetall(keys.neighbours(sku))
        for cat in best_wanted:
            pipe.zrevrange(keys.category_popularity(cat), 0, CATEGORY_ITEMS - 1, withscores=True)
        answers: list[Any] = await pipe.execute()
        for sku, near in zip(near_wanted, answers, strict=False):
            similar[sku] = {_text(n): float(w) for n, w in near.items()}
            graph.neighbours.put(sku, similar[sku], now)
        for cat, best in zip(best_wanted, answers[len(near_wanted) :], strict=False):
            by_category[cat] = [(_text(s), float(v)) for s, v in best]
            graph.best_sellers.put(cat, by_category[cat], now)
    profile = profile_of(stored)
    return DiscoverInputs.of(
        profile,
        _counted(by_category, popularity),
        _damped(similar, popularity),
        popularity,
        graph.folds.source(graph.factors.current(now), profile),
    )


def _fresh(cache: LastKnown[V], keys: Sequence[str], now: float) -> dict[str, V]:
    found = {}
    for key in keys:
        value = cache.fresh(key, now)
        if value is not None:
            found[key] = value
    return found


def _damped(
    similar: dict[str, dict[str, float]], popularity: Popularity
) -> dict[str, dict[str, float]]:
    """Each item's neighbours damped by their popularity, computed once per read of the
    neighbours and of the popularity list (both are kept for the cache interval and shared
    by every shopper, so the same item's damped neighbours serve every shopper who saw it;
    a new read of either is another object, damped afresh)."""
    if POPULARITY_DAMPING == 0:
        return similar
    scores, kept = popularity.scores, popularity.damped
    out = {}
    for sku, near in similar.items():
        found = kept.get(sku)
        if found is None or found[0] is not near:
            found = (near, damped(near, scores, POPULARITY_DAMPING))
            kept[sku] = found
        out[sku] = found[1]
    return out


def _counted(
    best_sellers: dict[str, list[tuple[str, float]]], popularity: Popularity
) -> dict[str, list[tuple[str, float]]]:
    """Each category's best sellers as read (the flows' scores) counted on the scale of
    ``popularity`` (the categories' counts must share one scale: a shopper's category
    source adds them up), once per read of either, like :func:`_damped`."""
    kept = popularity.counted
    out = {}
    for category, best in best_sellers.items():
        found = kept.get(category)
        if found is None or found[0] is not best:
            found = (best, list(counts(dict(best), popularity.reference).items()))
            kept[category] = found
        out[category] = found[1]
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
