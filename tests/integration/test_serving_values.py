"""The serving values make the round trip: written by the flows' sinks, read back by the API.

A price change goes through ``write_price`` into the real Redis and comes back through the
API's ``read_price_states``/``price_view``; a shopper's list goes through the
``RecommendationWriter`` and comes back through ``read_shopper``. Both sides use the models of
``schemas/serving.py``, so what is read equals what was written.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis
import redis.asyncio as aioredis

from api.features import FeatureReads
from api.prices import price_view, read_price_states
from api.recommendations import read_shopper
from flows.sinks.prices import write_price
from flows.sinks.serving import RecommendationWriter
from online_models.pricer import PriceChange
from schemas.serving import PriceDetails, StoredShopper
from schemas.settings import Settings
from tests.shoppers import viewed

pytestmark = pytest.mark.integration

CATEGORIES = {"rt-tea": "tea", "rt-milk": "dairy"}


async def test_a_written_price_is_read_back_as_written(
    stack: Settings, redis_client: redis.Redis
) -> None:
    change = PriceChange(
        sku="rt-tea",
        price=4.2,
        previous_price=3.99,
        reason="elasticity -1.2 ± 0.1",
        model_version="elasticity-1",
        t=1_767_607_200.0,
        sequence=1,
    )
    pipe = redis_client.pipeline()
    write_price(pipe, stack, change, "{}")
    pipe.execute()

    stored = PriceDetails.from_hash(redis_client.hgetall(stack.keys.price(change.sku)))
    assert stored == PriceDetails(
        price=4.2,
        previous_price=3.99,
        updated_at=datetime(2026, 1, 5, 10, tzinfo=UTC),
        reason=change.reason,
        model_version="elasticity-1",
    )
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        states = await read_price_states(
            client, stack.keys, FeatureReads.create(stack), [change.sku]
        )
    finally:
        await client.aclose()
    view = price_view(states[change.sku])
    assert (view.price, view.previous_price) == (4.2, 3.99)
    assert view.updated_at == stored.updated_at
    assert (view.reason, view.model_version) == (change.reason, change.model_version)


async def test_a_written_list_is_read_back_as_written(
    stack: Settings, redis_client: redis.Redis
) -> None:
    writer = RecommendationWriter(stack)
    try:
        writer.write_batch([viewed("rt-shopper", ["rt-tea", "rt-milk"], CATEGORIES)])
    finally:
        writer.close()

    raw = redis_client.get(stack.keys.recommendations("rt-shopper"))
    assert isinstance(raw, str)
    stored = StoredShopper.model_validate_json(raw)
    assert stored.user_id == "rt-shopper"
    assert {i.sku for i in stored.again} == {"rt-tea", "rt-milk"}
    assert stored.recent == ("rt-milk", "rt-tea")
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        shopper = await read_shopper(
            client, stack.keys, FeatureReads.create(stack), "rt-shopper", with_features=False
        )
    finally:
        await client.aclose()
    assert [(i.sku, i.score) for i in shopper.again] == [(i.sku, i.score) for i in stored.again]
    assert shopper.updated_at == stored.updated_at
