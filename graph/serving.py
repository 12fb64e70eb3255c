"""The graph as the API serves it: bought-together lists from Redis, the rest from Neo4j.

Each graph load copies every product's strongest ``CACHED_RELATED`` co-purchases to Redis
(``RedisKeys.graph_related``), because a Redis GET is several times cheaper per request than
a Cypher round trip through the Python driver (see BENCHMARKS.md, graph). A miss (unknown sku,
a longer list than cached, Redis down) asks Neo4j, which decides between the list and a 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import neo4j
import structlog

from graph import queries
from graph.queries import Influence
from infra.clients import SyncRedis, neo4j_async_driver
from infra.errors import ServiceUnavailable
from schemas.serving import RelatedProducts
from schemas.settings import Settings

log = structlog.get_logger(__name__)

CACHED_RELATED = 50


def cache_related(
    settings: Settings, driver: neo4j.Driver, client: SyncRedis, skus: Sequence[str]
) -> int:
    """Copy the bought-together lists of ``skus`` to Redis; return how many were written."""
    keys = settings.keys
    written = 0
    for start in range(0, len(skus), 1_000):
        lists = queries.related_lists(driver, settings, skus[start : start + 1_000], CACHED_RELATED)
        pipe = client.pipeline(transaction=False)  # one SET per product: each in its own slot
        for r in lists:
            pipe.set(keys.graph_related(settings.graph_namespace, r.sku), r.model_dump_json())
        pipe.execute()
        written += len(lists)
    return written


class GraphService:
    """The graph endpoints' Neo4j driver (created in the API's lifespan) and their read of
    the Redis copy, through the caller's Redis access (``cache_get``: the API's gate, whose
    outage pause then covers graph reads too)."""

    def __init__(
        self, settings: Settings, cache_get: Callable[[str], Awaitable[str | None]]
    ) -> None:
        self.settings = settings
        self.driver = neo4j_async_driver(settings)
        self.cache_get = cache_get

    async def related(self, sku: str, limit: int) -> RelatedProducts | None:
        key = self.settings.keys.graph_related(self.settings.graph_namespace, sku)
        try:
            raw = await self.cache_get(key)
        except ServiceUnavailable as exc:
            log.warning("graph cache unavailable; asking Neo4j", error=str(exc))
            raw = None
        if raw is not None:
            cached = RelatedProducts.model_validate_json(raw)
            if limit <= len(cached.items) or len(cached.items) < CACHED_RELATED:
                return RelatedProducts(sku=sku, items=cached.items[:limit])
        return await queries.related(self.driver, self.settings, sku, limit)

    async def influence(self, sku: str) -> Influence | None:
        return await queries.influence(self.driver, self.settings, sku)

    async def warm_up(self) -> int:
        """Ask Neo4j each of the API's two reads once, for a product no graph holds; how many
        were answered. A Neo4j just started plans each query on first use (7.1 s for the
        related products on the 2-core machine: docs/graph.md), so the API's start asks
        first, in the background, and the first shopper does not wait for it. Neo4j not
        answering is logged and left to the requests' own 503s."""
        try:
            await queries.related(self.driver, self.settings, "", 1)
            await queries.influence(self.driver, self.settings, "")
        except ServiceUnavailable as exc:
            log.warning("graph reads not warmed up", error=str(exc))
            return 0
        return 2

    async def close(self) -> None:
        await self.driver.close()
