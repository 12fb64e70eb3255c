"""A shopper's recommendations: streaming candidates, re-ranked when a ranker is loaded.

Reads are split by how widely they are shared, so each can be cached on its own: the
shopper's lists (buy again as stored, discover built from the stored shopper) and feature
hash (one per shopper), the popularity list (one for all: the discover lists' best sellers,
their neighbours' popularity, the order of buy again and the popular top-up), and each
candidate item's features and category (shared by every shopper who sees it). A shopper's
discover list is built only as deep as the answer needs (:func:`depth_for`), and built
again when a deeper one is asked.

Each list answered is kept as sent (:class:`Answer`) with the shopper's cached read it was
computed from, and the other cached inputs it used: while every one of them is still the
fresh cached value, the same request would compute the same list, so it is sent again as it
is (:meth:`RecommendationService.cached`) — also before FastAPI's routing
(``api/hot_lists.py``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import numpy as np

from api.cache import LastKnown, read_through
from api.catalogue import CatalogueService
from api.discover import DEEPEST, GraphReads, Popularity, read_inputs, read_popularity
from api.features import FeatureReads
from api.metrics import ApiMetrics
from api.onnx_models import LoadedModel, ModelSlot
from api.redis_gate import RedisGate
from api.responses import model_json
from infra.clients import AsyncRedis
from online_models.candidate_signals import NO_SIGNALS
from online_models.ranking import RANKER_FEATURES, candidate_row, item_values
from online_models.ranking import shopper as parse_shopper
from online_models.recommender import Candidate, likely_again, mixed
from schemas.keys import RedisKeys
from schemas.serving import (
    CandidateSource,
    ListName,
    ListSource,
    Recommendations,
    RecommendedItem,
    StoredShopper,
)

MAX_K = 50
POPULAR_DEPTH = 2 * MAX_K
CANDIDATES_MAX = DEEPEST  # the ranker's pool for k items: depth_for(k) candidates
ANSWERS_KEPT = 8  # lists kept as sent per shopper (different k or list; a few KB each)
T = TypeVar("T")
LIST_HELP = (
    "`again`: the shopper's own items (buy again, continue); `discover`: items they have not "
    "interacted with (similar to their history, their categories' best sellers, popular); "
    "`mixed`: both, buy again first with places kept for discover."
)


def depth_for(k: int) -> int:
    """How many candidates an answer of ``k`` items is chosen from (the ranker's pool, and
    how deep the discover list is built): ``max(2k, 20)``, at most :data:`CANDIDATES_MAX`."""
    return min(CANDIDATES_MAX, max(2 * k, 20))


class ListedItem(NamedTuple):
    """One item of a shopper's lists or of the popular list as held between requests.

    A read holds some 30 of these for a cache interval and an answer serves ``k`` of them,
    so they are named tuples, made a :class:`RecommendedItem` only when served
    (:func:`served`): 0.15 us to make instead of 1.2, and one object for the garbage
    collector's young passes to scan instead of two (the model and its set of fields set;
    its dict of strings and numbers is not tracked).
    """

    sku: str
    score: float
    source: CandidateSource | None


def served(
    shopper: Shopper,
    name: ListName,
    items: Iterable[tuple[str, float, CandidateSource | None]],
    source: ListSource,
    *,
    stale: bool,
    model_version: str | None = None,
) -> Recommendations:
    """The answer serving ``items`` (sku, score, where it came from) of list ``name`` to
    ``shopper``, validated in one call for the list and its items: ~15 us for 10 items,
    where a model built per item and then the list took ~25."""
    return Recommendations.model_validate(
        {
            "user_id": shopper.user_id,
            "list_name": name,
            "items": [{"sku": sku, "score": score, "source": by} for sku, score, by in items],
            "source": source,
            "model_version": model_version,
            "updated_at": shopper.updated_at,
            "stale": stale,
        }
    )


@dataclass(slots=True)
class Shopper:
    """One shopper's lists as read now (a plain dataclass: it is built on every read of a
    shopper from values already checked, and never sent as it is, so nothing validates it)."""

    user_id: str
    again: list[ListedItem]  # the flows' buy-again list, best first ([] when unknown)
    discover: list[ListedItem]  # built from the flows' state now ([] when unknown)
    updated_at: datetime | None  # when the flows last stored the shopper (None: unknown)
    features: dict[str, str]  # the shopper's features by name ({} when not read)
    depth: int = 0  # how deep ``discover`` was built (its first ``depth`` items are final)
    # What the discover sources say of each listed item (read with the ranker's features)
    signals: dict[str, tuple[float, ...]] = field(default_factory=dict)
    # The items the shopper is known to have touched (the stored shopper's ``seen``), which
    # ``pool`` does not top up with
    seen: tuple[str, ...] = ()
    # The lists answered from this read of the shopper, by the raw query string the route
    # validated (RecommendationService.answer); they go with it when it is read again. None
    # until the first is kept.
    answers: dict[str, Answer] | None = field(default=None, repr=False, compare=False)

    @property
    def known(self) -> bool:
        return self.updated_at is not None

    def stored(self, name: ListName, k: int) -> list[ListedItem]:
        """The stored list ``name``; ``mixed`` is the two as a list of ``k``
        (``online_models.recommender.mixed``: buy again first, places kept for discover)."""
        if name == "again":
            return self.again
        if name == "discover":
            return self.discover
        own = [(i.sku, i.score) for i in self.again]
        found = [(i.sku, i.score) for i in self.discover]
        both = mixed(own, found, k)
        by_sku = {i.sku: i for i in self.discover} | {i.sku: i for i in self.again}
        return [by_sku[s] for s, _ in both]


@dataclass(frozen=True, slots=True)
class Item:
    """What the ranker needs of one candidate item (its part of the row, computed once)."""

    values: tuple[float, ...]  # online_models.ranking.item_values of its features
    category: str | None


NO_ITEM = Item(values=item_values({}), category=None)  # a candidate whose features are unknown


@dataclass(frozen=True, slots=True)
class Popular:
    """The popularity list, read once per cache interval and shared by every request."""

    counts: Popularity  # for the discover lists
    top: list[ListedItem]  # the POPULAR_DEPTH most popular


@dataclass(frozen=True, slots=True)
class Answer:
    """A list as it was served, and the shared cached inputs it was computed from besides
    the shopper that keeps it (the objects themselves: a re-read input is another object)."""

    served: Recommendations
    body: bytes  # ``served`` as JSON
    popular: Popular
    # The candidates' skus and their items (none without a ranker): two tuples rather than a
    # pair each, 20 fewer objects a list kept for the collector to scan
    skus: tuple[str, ...]
    items: tuple[Item, ...]
    model: LoadedModel | None


async def read_shopper(
    client: AsyncRedis,
    keys: RedisKeys,
    reads: FeatureReads,
    user_id: str,
    with_features: bool,
    discover_k: int = 0,
    popularity: Popularity | None = None,
    graph: GraphReads | None = None,
) -> Shopper:
    """The shopper's buy-again list (ordered over ``popularity`` when given:
    ``online_models.recommender.likely_again``), their discover list (``discover_k`` long,
    built now over ``popularity`` and ``graph``: ``api/discover.py``) and, for the ranker,
    features and what the discover sources say of each listed item (``client`` returns bytes)."""
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.recommendations(user_id))
    if with_features:
        reads.hmget_shopper(pipe, user_id)
    replies = await pipe.execute()
    features = reads.shopper.decode(replies[1]) if with_features else {}
    if replies[0] is None:
        return Shopper(user_id=user_id, again=[], discover=[], updated_at=None, features=features)
    stored = StoredShopper.model_validate_json(replies[0])
    found: list[Candidate] = []
    signals: dict[str, tuple[float, ...]] = {}
    if discover_k:
        inputs = await read_inputs(client, keys, stored, popularity, graph)
        found = inputs.candidates(discover_k)
        if with_features:  # every item a pool of this shopper can hold (``pool``)
            listed = [sku for sku, _, _ in found] + [i.sku for i in stored.again]
            if len(found) < discover_k:  # the pool is topped up from the popular items
                listed += [sku for sku, _ in inputs.popularity.ranked[:POPULAR_DEPTH]]
            signals = inputs.signals(dict.fromkeys(listed))
    own = [(i.sku, i.score) for i in stored.again]
    if popularity is not None:  # the likelier purchases first (likely_again)
        own = likely_again(own, popularity.scores)
    return Shopper(
        user_id=user_id,
        again=[ListedItem(s, v, "again") for s, v in own],
        discover=[ListedItem(s, v, source) for s, v, source in found],
        updated_at=stored.updated_at,
        features=features,
        depth=discover_k,
        signals=signals,
        seen=stored.seen,
    )


async def read_shopper_features(
    client: AsyncRedis, reads: FeatureReads, user_id: str
) -> dict[str, str]:
    """Only the shopper's features, by name ({} for a shopper with none): one ``HMGET``, for
    a reader that needs nothing of their stored lists (the ranker over search results)."""
    return reads.shopper.decode(await reads.hmget_shopper(client, user_id))


async def read_popular(client: AsyncRedis, keys: RedisKeys, depth: int) -> Popular:
    """The popularity list, and its first ``depth`` as served items (one round trip)."""
    counts = await read_popularity(client, keys)
    top = [ListedItem(s, v, "popular") for s, v in counts.ranked[:depth]]
    return Popular(counts, top)


async def read_items(
    client: AsyncRedis,
    keys: RedisKeys,
    reads: FeatureReads,
    skus: list[str],
    categories: Mapping[str, str],
) -> dict[str, Item]:
    """Each item's ranker inputs, one pipeline (``client`` returns bytes), and its category
    from ``categories`` (the catalogue the API holds in memory; None when not catalogued)."""
    pipe = client.pipeline(transaction=False)
    for sku in skus:
        pipe.hmget(reads.sku.key(sku), list(reads.item.fields))  # type: ignore[arg-type]
        pipe.hmget(keys.sku_features(sku), list(reads.item_state))
    replies: list[Any] = await pipe.execute()
    out = {}
    for i, sku in enumerate(skus):
        model, plain = replies[2 * i], replies[2 * i + 1]
        features = reads.item.decode(model)
        state = zip(reads.item_state, plain, strict=True)
        features |= {k: v.decode() for k, v in state if v is not None}
        out[sku] = Item(values=item_values(features), category=categories.get(sku))
    return out


def pool(
    shopper: Shopper, name: ListName, popular: list[ListedItem], depth: int
) -> list[ListedItem]:
    """The first ``depth`` candidates of list ``name``: the list itself, then (except for
    ``again``, the shopper's own items) popular items they have not touched (``seen``) and do
    not buy again, no repeats. Discover promises items new to the shopper, and so does the
    top-up standing in for it: a shopper who has touched every popular item left gets a
    shorter list, not items they know."""
    out = {i.sku: i for i in shopper.stored(name, depth)}
    if name != "again" and len(out) < depth:
        known = {i.sku for i in shopper.again}.union(shopper.seen)
        for item in popular:
            if len(out) >= depth:
                break
            if item.sku not in known:
                out.setdefault(item.sku, item)
    return list(out.values())[:depth]


def without_ranker(
    shopper: Shopper,
    name: ListName,
    popular: list[ListedItem],
    k: int,
    *,
    stale: bool = False,
) -> Recommendations:
    """The stored list (topped up from popularity), or popularity alone for new shoppers
    (nothing to buy again for them)."""
    if not shopper.known:
        return served(
            shopper, name, [] if name == "again" else popular[:k], "popularity", stale=stale
        )
    return served(shopper, name, pool(shopper, name, popular, k)[:k], "streaming", stale=stale)


def ranker_rows(
    shopper: Shopper, candidates: list[ListedItem], items: dict[str, Item]
) -> np.ndarray[Any, Any]:
    """The ranker's input rows of the candidates, in order (``online_models.ranking``'s rows,
    as in training): the shopper's JSON is parsed once, each item's part comes precomputed
    from the shared item cache and the discover sources' signals from the shopper's read.
    The rows go to numpy as one flat list: 8 us for 20 rows, where a list of rows took 13."""
    who = parse_shopper(shopper.features)
    rows: list[float] = []
    for rank, c in enumerate(candidates):
        item = items.get(c.sku, NO_ITEM)
        signals = shopper.signals.get(c.sku, NO_SIGNALS)
        rows += candidate_row(
            who, item.values, c.score, rank, item.category, c.sku, c.source, signals
        )
    return np.array(rows, dtype=np.float32).reshape(len(candidates), len(RANKER_FEATURES))


def ranked(
    shopper: Shopper,
    candidates: list[ListedItem],
    items: dict[str, Item],
    model: LoadedModel,
    k: int,
    *,
    name: ListName = "discover",
    stale: bool = False,
) -> Recommendations:
    """The candidates scored by the ranker (one ONNX run over :func:`ranker_rows`), best
    first; for ``mixed``, the shopper's own items and the others each ranked, then put
    together as ``online_models.recommender.mixed`` does."""
    rows = ranker_rows(shopper, candidates, items)
    predicted = model.predict(rows) if candidates else np.zeros(0)
    order = np.argsort(-predicted, kind="stable").tolist()
    scores = predicted.tolist()  # Python floats: indexing the array boxes a scalar per item
    best = [(candidates[i].sku, round(scores[i], 6)) for i in order]
    if name == "mixed":
        own = {i.sku for i in shopper.again}
        best = mixed([b for b in best if b[0] in own], [b for b in best if b[0] not in own], k)
    source = {c.sku: c.source for c in candidates}
    shown = [(sku, score, source[sku]) for sku, score in best[:k]]
    return served(shopper, name, shown, "ranker", stale=stale, model_version=model.label)


def usable_ranker(slot: ModelSlot) -> LoadedModel | None:
    """The slot's ranker when its inputs are today's :data:`RANKER_FEATURES`; None for a
    version trained on other columns (its rows would not fit until a new one is trained)."""
    model = slot.model
    return model if model is not None and model.features == RANKER_FEATURES else None


class RecommendationService:
    """Shoppers' lists for the HTTP and websocket handlers (one per API process): each read
    goes cache, then Redis, then last known (``api/cache.py``); each list served is handed
    to ``on_served`` (the served-list log, ``api/served.py``)."""

    def __init__(
        self,
        redis: RedisGate,
        caches: tuple[LastKnown[Shopper], LastKnown[Popular], LastKnown[Item]],
        keys: RedisKeys,
        reads: FeatureReads,
        ranker: ModelSlot,
        metrics: ApiMetrics,
        catalogue: CatalogueService,
        on_served: Callable[[Recommendations], None] = lambda _: None,
        graph: GraphReads | None = None,
    ) -> None:
        self.redis = redis
        self.catalogue = catalogue
        self.shoppers, self.popular, self.items = caches
        self.keys = keys
        self.reads = reads
        self.ranker = ranker
        self.metrics = metrics
        self.on_served = on_served
        self.graph = graph or GraphReads()

    async def for_shopper(self, user_id: str, k: int, name: ListName = "mixed") -> Recommendations:
        """The shopper's top-``k`` of list ``name`` (ranked when a ranker is loaded), logged
        as served."""
        served = (await self._lists(user_id, k, name))[0].served
        self.on_served(served)
        return served

    async def answer(self, user_id: str, k: int, name: ListName, query: str) -> bytes:
        """:meth:`for_shopper` as JSON, for a request whose raw query string ``query`` the
        route validated into ``k`` and ``name``: the kept answer while its inputs are the
        fresh cached ones (:meth:`cached`), else computed now and kept with the shopper read
        it came from (unless stale)."""
        kept = self.cached(user_id, query)
        if kept is not None:
            return self.send_again(kept)
        found, shopper = await self._lists(user_id, k, name)
        self.on_served(found.served)
        if not found.served.stale:
            answers = shopper.answers
            if answers is None:
                answers = shopper.answers = {}
            answers[query] = found
            while len(answers) > ANSWERS_KEPT:
                del answers[next(iter(answers))]
        return found.body

    def cached(self, user_id: str, query: str) -> Answer | None:
        """The answer kept for ``query`` with the shopper's fresh cached read, while each
        other input it was computed from is still the fresh cached value too: the ranker
        served now, the popularity list and each candidate item. (Pub/sub drops the
        shopper's read when the flows change their lists, and its answers with it.) Nothing
        is counted or logged: :meth:`send_again` does."""
        now = time.monotonic()
        shopper = self.shoppers.fresh(user_id, now)
        answers = None if shopper is None else shopper.answers
        kept = None if answers is None else answers.get(query)
        if (
            kept is None
            or self.popular.fresh("top", now) is not kept.popular
            or usable_ranker(self.ranker) is not kept.model
        ):
            return None
        items = self.items
        for sku, item in zip(kept.skus, kept.items, strict=True):
            if items.fresh(sku, now) is not item:
                return None
        return kept

    def send_again(self, kept: Answer) -> bytes:
        """A kept answer served again: counted as a cache hit and logged as served."""
        self.metrics.count_lookups("recommendations", "hit")
        self.on_served(kept.served)
        return kept.body

    async def _lists(self, user_id: str, k: int, name: ListName) -> tuple[Answer, Shopper]:
        keys, reads = self.keys, self.reads
        ranker = usable_ranker(self.ranker)
        depth = depth_for(k)
        popular, popular_result = await self._cached(
            self.popular, "top", lambda client: read_popular(client, keys, POPULAR_DEPTH), raw=True
        )
        cached = self.shoppers.fresh(user_id, time.monotonic())
        if cached is not None and cached.known and cached.depth < depth:
            self.shoppers.invalidate(user_id)  # its discover list is too short for this k
        shopper, result = await self._cached(
            self.shoppers,
            user_id,
            lambda client: read_shopper(
                client,
                keys,
                reads,
                user_id,
                with_features=ranker is not None,
                discover_k=depth,
                popularity=popular.counts,
                graph=self.graph,
            ),
            raw=True,
        )
        self.metrics.count_lookups("recommendations", result)
        stale = "stale" in (result, popular_result)
        if ranker is None or not shopper.known:
            served = without_ranker(shopper, name, popular.top, k, stale=stale)
            return Answer(served, model_json(served), popular, (), (), ranker), shopper
        candidates = pool(shopper, name, popular.top, depth)
        items, stale_items = await self._items(candidates)
        served = ranked(
            shopper, candidates, items, ranker, k, name=name, stale=stale or stale_items
        )
        skus = tuple(c.sku for c in candidates if c.sku in items)
        used = tuple(items[sku] for sku in skus)
        return Answer(served, model_json(served), popular, skus, used, ranker), shopper

    async def _cached(
        self,
        cache: LastKnown[T],
        key: str,
        read: Callable[[AsyncRedis], Awaitable[T]],
        *,
        raw: bool = False,
    ) -> tuple[T, str]:
        """``cache[key]`` when fresh (hit), else Redis (miss), else the last-known value
        (stale)."""

        async def one(client: AsyncRedis, _missing: list[str]) -> dict[str, T]:
            return {key: await read(client)}

        found = await read_through(self.redis, cache, [key], one, raw=raw)
        if found.error is not None and found.unavailable:
            raise found.error
        return found.values[key], "hit" if found.hits else "stale" if found.stale else "miss"

    async def _items(self, candidates: list[ListedItem]) -> tuple[dict[str, Item], bool]:
        """Each candidate's features and category: shared cache first, one pipeline for the
        rest; True when Redis was unavailable (last-known items, where there are any)."""
        keys, reads, catalogue = self.keys, self.reads, self.catalogue

        async def read(client: AsyncRedis, missing: list[str]) -> dict[str, Item]:
            categories = await catalogue.categories()
            return await read_items(client, keys, reads, missing, categories)

        found = await read_through(
            self.redis, self.items, [c.sku for c in candidates], read, raw=True
        )
        return found.values, found.error is not None


__all__ = [
    "CANDIDATES_MAX",
    "LIST_HELP",
    "MAX_K",
    "Answer",
    "Item",
    "ListedItem",
    "Popular",
    "RecommendationService",
    "Recommendations",
    "RecommendedItem",
    "Shopper",
    "depth_for",
    "pool",
    "ranked",
    "ranker_rows",
    "read_items",
    "read_popular",
    "read_shopper",
    "read_shopper_features",
    "served",
    "usable_ranker",
    "without_ranker",
]
