"""The discover list, built when it is asked for from what the flows publish at that moment.

One shopper costs two pipelined round trips: the neighbours of their recent items, their
categories' best sellers, the popular items and the least popular product the popularity
list still keeps; then the popularity of every neighbour (the similarity is divided by it,
``online_models.similarity.damped``, so that best sellers do not crowd every list). The
popularity list keeps the ``TILLFLOW_POPULARITY_LEN`` most popular products: a neighbour past
its end counts as popular as the last one kept, not as unseen (which would rank the rarest
items of a large catalogue above the rest). The ranking itself is
``online_models.recommender.discover``.
"""

from __future__ import annotations

from typing import Any

from infra.clients import AsyncRedis
from online_models.recommender import CATEGORY_ITEMS, DISCOVER_DEPTH, Profile, Scored, discover
from online_models.similarity import POPULARITY_DAMPING, damped
from schemas.keys import RedisKeys
from schemas.serving import DiscoverOrigin, StoredShopper

POPULAR_CANDIDATES = 4  # × k popular items read as the last resort


def profile_of(stored: StoredShopper) -> Profile:
    """The recommender's profile of a stored shopper."""
    items = [(i.sku, i.score) for i in stored.again]
    return Profile(items, list(stored.categories), list(stored.recent), frozenset(stored.seen))


async def read_discover(
    client: AsyncRedis, keys: RedisKeys, stored: StoredShopper, k: int
) -> tuple[Scored, DiscoverOrigin]:
    """The shopper's discover top-``k`` and where its best item came from (``client``
    returns bytes)."""
    recent = stored.recent[:DISCOVER_DEPTH]
    categories = [c for c, _ in stored.categories]
    pipe = client.pipeline(transaction=False)
    for sku in recent:
        pipe.hgetall(keys.neighbours(sku))
    for cat in categories:
        pipe.zrevrange(keys.category_popularity(cat), 0, CATEGORY_ITEMS - 1, withscores=True)
    pipe.zrevrange(keys.popularity, 0, POPULAR_CANDIDATES * k, withscores=True)
    pipe.zrange(keys.popularity, 0, 0, withscores=True)  # the least popular product kept
    answers: list[Any] = await pipe.execute()
    similar = {
        sku: {_text(n): float(w) for n, w in near.items()}
        for sku, near in zip(recent, answers, strict=False)
    }
    by_category = {
        cat: [(_text(s), float(v)) for s, v in best]
        for cat, best in zip(categories, answers[len(recent) :], strict=False)
    }
    popular = [(_text(s), float(v)) for s, v in answers[-2]]
    floor = max((float(v) for _, v in answers[-1]), default=1.0)
    neighbours = await _damped(client, keys, similar, floor)
    return discover(profile_of(stored), by_category, neighbours, popular, k)


async def _damped(
    client: AsyncRedis, keys: RedisKeys, similar: dict[str, dict[str, float]], floor: float
) -> dict[str, dict[str, float]]:
    wanted = sorted({other for near in similar.values() for other in near})
    if POPULARITY_DAMPING == 0 or not wanted:
        return similar
    scores = await client.zmscore(keys.popularity, wanted)
    popularity = {s: float(v) for s, v in zip(wanted, scores, strict=True) if v is not None}
    return {
        sku: damped(near, popularity, POPULARITY_DAMPING, floor) for sku, near in similar.items()
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
