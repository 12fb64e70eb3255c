"""A shopper's recommendations: streaming candidates, re-ranked when a ranker is loaded."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from api.onnx_models import LoadedModel
from online_models.ranking import ranker_features
from schemas.keys import RedisKeys


class RecommendedItem(BaseModel):
    sku: str
    score: float


class Recommendations(BaseModel):
    """A shopper's top-k and where it came from."""

    user_id: str
    items: list[RecommendedItem]
    source: str = Field(
        description="What served the list: `ranker` (the ONNX ranker re-ranking the streaming "
        "candidates, topped up from popularity), `streaming` (the flows' co-occurrence list as "
        "stored, when no ranker is loaded) or `popularity` (shoppers the flows have not seen)."
    )
    model_version: str | None = Field(None, description="The ranker version, when it ranked.")
    updated_at: datetime | None = Field(None, description="When the flows last refreshed it.")
    stale: bool = Field(False, description="True when Redis was unavailable: last-known list.")


class Candidates(BaseModel):
    """What Redis holds for one shopper (cached as a unit)."""

    user_id: str
    stored: list[RecommendedItem]  # the flows' list, best first ([] for unknown shoppers)
    popular: list[RecommendedItem]  # the popularity fallback, best first
    updated_at: datetime | None
    user: dict[str, str] = {}  # the shopper's feature hash (read when a ranker is loaded)
    items: dict[str, dict[str, str]] = {}  # each candidate's feature hash (idem)
    categories: dict[str, str] = {}  # each candidate's catalogue category (idem)


async def read_candidates(
    client: aioredis.Redis, keys: RedisKeys, user_id: str, depth: int, with_features: bool
) -> Candidates:
    """The shopper's stored list and the top ``depth`` popular items; with their features
    (a second round trip) when ``with_features``."""
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.recommendations(user_id))
    pipe.zrevrange(keys.popularity, 0, depth - 1, withscores=True)
    if with_features:
        pipe.hgetall(keys.user_features(user_id))
    replies = await pipe.execute()
    stored_raw, popular_raw = replies[0], replies[1]
    stored: list[RecommendedItem] = []
    updated_at = None
    if stored_raw is not None:
        body = orjson.loads(stored_raw)
        stored = [RecommendedItem(sku=i["sku"], score=float(i["score"])) for i in body["items"]]
        if body.get("updated_at"):
            updated_at = datetime.fromisoformat(body["updated_at"])
    popular = [RecommendedItem(sku=s, score=float(v)) for s, v in popular_raw]
    found = Candidates(user_id=user_id, stored=stored, popular=popular, updated_at=updated_at)
    if not with_features or not stored:
        return found
    skus = _pool(found, depth)
    pipe = client.pipeline(transaction=False)
    for sku in skus:
        pipe.hgetall(keys.sku_features(sku))
    pipe.hmget(keys.catalogue, skus)
    answers = await pipe.execute()
    found.user = replies[2]
    found.items = dict(zip(skus, answers[:-1], strict=True))
    found.categories = {
        sku: orjson.loads(raw)["category"]
        for sku, raw in zip(skus, answers[-1], strict=True)
        if raw is not None
    }
    return found


def _pool(c: Candidates, depth: int) -> list[str]:
    """The skus to rank: the stored list first, then popular items, without repeats."""
    seen: dict[str, None] = dict.fromkeys(i.sku for i in c.stored)
    for item in c.popular:
        if len(seen) >= depth:
            break
        seen.setdefault(item.sku, None)
    return list(seen)


def without_ranker(c: Candidates, k: int, *, stale: bool = False) -> Recommendations:
    """The stored list (topped up from popularity), or popularity alone for new shoppers."""
    if not c.stored:
        return Recommendations(
            user_id=c.user_id, items=c.popular[:k], source="popularity", stale=stale
        )
    seen = {i.sku for i in c.stored}
    items = c.stored[:k] + [i for i in c.popular if i.sku not in seen][: max(0, k - len(c.stored))]
    return Recommendations(
        user_id=c.user_id, items=items, source="streaming", updated_at=c.updated_at, stale=stale
    )


def ranked(c: Candidates, model: LoadedModel, k: int, *, stale: bool = False) -> Recommendations:
    """The candidate pool scored by the ranker (one ONNX run for all of them), best first.

    Shoppers the flows have not seen keep the popularity list: the ranker has nothing to
    go on for them.
    """
    if not c.stored or not c.items:
        return without_ranker(c, k, stale=stale)
    scores = {i.sku: i.score for i in c.stored} | {
        i.sku: i.score for i in c.popular if i.sku not in {s.sku for s in c.stored}
    }
    skus = list(c.items)
    rows = np.array(
        [
            ranker_features(
                c.user, c.items[sku], scores.get(sku, 0.0), rank, c.categories.get(sku), sku=sku
            )
            for rank, sku in enumerate(skus)
        ],
        dtype=np.float32,
    )
    predicted = model.predict(rows)
    order = np.argsort(-predicted, kind="stable")[:k]
    return Recommendations(
        user_id=c.user_id,
        items=[RecommendedItem(sku=skus[i], score=round(float(predicted[i]), 6)) for i in order],
        source="ranker",
        model_version=model.label,
        updated_at=c.updated_at,
        stale=stale,
    )
