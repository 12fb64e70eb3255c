"""A shopper's recommendations: streaming candidates, re-ranked when a ranker is loaded.

Reads are split by how widely they are shared, so each can be cached on its own: the
shopper's stored list and feature hash (one per shopper), the popularity list (one for all),
and each candidate item's features and category (shared by every shopper who sees it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, Field

from api.features import FeatureReads
from api.onnx_models import LoadedModel
from infra.clients import AsyncRedis
from online_models.ranking import candidate_row, item_values
from online_models.ranking import shopper as parse_shopper
from schemas.keys import RedisKeys
from schemas.serving import StoredRecommendations


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


class Shopper(BaseModel):
    """What Redis holds for one shopper."""

    user_id: str
    stored: list[RecommendedItem]  # the flows' list, best first ([] for unknown shoppers)
    updated_at: datetime | None
    features: dict[str, str]  # the shopper's features by name ({} when not read)


class Item(BaseModel):
    """What the ranker needs of one candidate item (its part of the row, computed once)."""

    values: tuple[float, ...]  # online_models.ranking.item_values of its features
    category: str | None


async def read_shopper(
    client: AsyncRedis,
    keys: RedisKeys,
    reads: FeatureReads,
    user_id: str,
    with_features: bool,
) -> Shopper:
    """The shopper's stored list and, for the ranker, features (``client`` returns bytes)."""
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.recommendations(user_id))
    if with_features:
        pipe.hmget(reads.user.key(user_id), list(reads.shopper.fields))  # type: ignore[arg-type]
    replies = await pipe.execute()
    stored: list[RecommendedItem] = []
    updated_at = None
    if replies[0] is not None:
        body = StoredRecommendations.model_validate_json(replies[0])
        stored = [RecommendedItem(sku=i.sku, score=i.score) for i in body.items]
        updated_at = body.updated_at
    features = reads.shopper.decode(replies[1]) if with_features else {}
    return Shopper(user_id=user_id, stored=stored, updated_at=updated_at, features=features)


async def read_popular(client: AsyncRedis, keys: RedisKeys, depth: int) -> list[RecommendedItem]:
    top = await client.zrevrange(keys.popularity, 0, depth - 1, withscores=True)
    return [RecommendedItem(sku=s, score=float(v)) for s, v in top]


async def read_items(
    client: AsyncRedis, keys: RedisKeys, reads: FeatureReads, skus: list[str]
) -> dict[str, Item]:
    """Each item's ranker inputs and category, one pipeline (``client`` returns bytes)."""
    pipe = client.pipeline(transaction=False)
    for sku in skus:
        pipe.hmget(reads.sku.key(sku), list(reads.item.fields))  # type: ignore[arg-type]
        pipe.hmget(keys.sku_features(sku), list(reads.item_state))
    pipe.hmget(keys.catalogue, skus)
    replies: list[Any] = await pipe.execute()
    out = {}
    for i, (sku, entry) in enumerate(zip(skus, replies[-1], strict=True)):
        model, plain = replies[2 * i], replies[2 * i + 1]
        features = reads.item.decode(model)
        state = zip(reads.item_state, plain, strict=True)
        features |= {k: v.decode() for k, v in state if v is not None}
        category = None if entry is None else orjson.loads(entry)["category"]
        out[sku] = Item(values=item_values(features), category=category)
    return out


def pool(shopper: Shopper, popular: list[RecommendedItem], depth: int) -> list[RecommendedItem]:
    """The candidates: the stored list first, then popular items, without repeats."""
    out = {i.sku: i for i in shopper.stored}
    for item in popular:
        if len(out) >= depth:
            break
        out.setdefault(item.sku, item)
    return list(out.values())


def without_ranker(
    shopper: Shopper, popular: list[RecommendedItem], k: int, *, stale: bool = False
) -> Recommendations:
    """The stored list (topped up from popularity), or popularity alone for new shoppers."""
    if not shopper.stored:
        return Recommendations(
            user_id=shopper.user_id, items=popular[:k], source="popularity", stale=stale
        )
    return Recommendations(
        user_id=shopper.user_id,
        items=pool(shopper, popular, k)[:k],
        source="streaming",
        updated_at=shopper.updated_at,
        stale=stale,
    )


def ranked(
    shopper: Shopper,
    candidates: list[RecommendedItem],
    items: dict[str, Item],
    model: LoadedModel,
    k: int,
    *,
    stale: bool = False,
) -> Recommendations:
    """The candidates scored by the ranker (one ONNX run for all of them), best first.

    Rows are ``online_models.ranking``'s, as in training: the shopper's JSON is parsed once
    and each item's part comes precomputed from the shared item cache.
    """
    who = parse_shopper(shopper.features)
    empty = Item(values=item_values({}), category=None)
    rows = np.array(
        [
            candidate_row(who, item.values, c.score, rank, item.category, c.sku)
            for rank, c in enumerate(candidates)
            for item in (items.get(c.sku, empty),)
        ],
        dtype=np.float32,
    )
    predicted = model.predict(rows)
    order = np.argsort(-predicted, kind="stable")[:k]
    return Recommendations(
        user_id=shopper.user_id,
        items=[
            RecommendedItem(sku=candidates[i].sku, score=round(float(predicted[i]), 6))
            for i in order
        ],
        source="ranker",
        model_version=model.label,
        updated_at=shopper.updated_at,
        stale=stale,
    )
