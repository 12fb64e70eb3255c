"""A shopper's recommendations: streaming candidates, re-ranked when a ranker is loaded."""

from __future__ import annotations

from datetime import datetime

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from schemas.keys import RedisKeys


class RecommendedItem(BaseModel):
    sku: str
    score: float


class Recommendations(BaseModel):
    """A shopper's top-k and where it came from."""

    user_id: str
    items: list[RecommendedItem]
    source: str = Field(
        description="What served the list: `ranker` (ONNX ranker over the streaming "
        "candidates), `streaming` (the flows' co-occurrence list as stored) or `popularity` "
        "(fallback for shoppers the flows have not seen)."
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


async def read_candidates(
    client: aioredis.Redis, keys: RedisKeys, user_id: str, depth: int
) -> Candidates:
    """The shopper's stored list and the top ``depth`` popular items, in one round trip."""
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.recommendations(user_id))
    pipe.zrevrange(keys.popularity, 0, depth - 1, withscores=True)
    stored_raw, popular_raw = await pipe.execute()
    stored: list[RecommendedItem] = []
    updated_at = None
    if stored_raw is not None:
        body = orjson.loads(stored_raw)
        stored = [RecommendedItem(sku=i["sku"], score=float(i["score"])) for i in body["items"]]
        if body.get("updated_at"):
            updated_at = datetime.fromisoformat(body["updated_at"])
    popular = [RecommendedItem(sku=s, score=float(v)) for s, v in popular_raw]
    return Candidates(user_id=user_id, stored=stored, popular=popular, updated_at=updated_at)


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
