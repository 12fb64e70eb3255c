"""The discover list as the API reads it from the real Redis the flows' sinks write."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from api.discover import read_discover
from flows.sinks.serving import ItemGraphWriter
from schemas.serving import StoredShopper
from schemas.settings import Settings

pytestmark = pytest.mark.integration


async def test_a_neighbour_past_the_popularity_lists_end_is_damped_as_the_last_kept(
    stack: Settings,
) -> None:
    """The popularity list keeps the ``popularity_len`` most popular products; a neighbour
    beyond it is at most as popular as the last one kept. Read as unknown (popularity 1),
    it would escape the damping and outrank a stronger neighbour that the list does keep."""
    settings = stack.model_copy(
        update={
            "redis_prefix": f"{stack.redis_prefix}disc{uuid.uuid4().hex[:6]}:",
            "popularity_len": 2,
        }
    )
    writer = ItemGraphWriter(settings)
    writer.write_batch(
        [
            ("HIT", ("", 10_000.0)),
            ("KEPT", ("", 10_000.0)),
            ("RARE", ("", 9_000.0)),  # cut: only the two most popular are kept
            ("SEEN", [("KEPT", 0.6), ("RARE", 0.5)]),
        ]
    )
    writer.close()
    stored = StoredShopper.model_validate_json(
        StoredShopper.encode("u-1", [("SEEN", 1.0)], ["SEEN"], ["SEEN"], [], datetime.now(UTC))
    )
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        found, origin = await read_discover(client, settings.keys, stored, 3)
    finally:
        await client.aclose()
    assert origin == "similar"
    assert [sku for sku, _ in found] == ["KEPT", "RARE", "HIT"]
    kept, rare = found[0][1], found[1][1]
    assert rare / kept == pytest.approx(0.5 / 0.6, rel=1e-3)  # both damped by 10,000**0.25
