"""Product search for the API: OpenSearch's answer, re-ranked for a shopper by the ranker.

The OpenSearch client lives for the API's lifetime (the search router's lifespan). When
OpenSearch does not answer, searches raise :class:`ServiceUnavailable` naming it (the API
answers 503) and every other route keeps serving.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aiohttp
from fastapi import Request
from opensearchpy.exceptions import NotFoundError, OpenSearchException

from api.recommendations import (
    Item,
    ListedItem,
    Shopper,
    ranked,
    read_items,
    read_shopper_features,
    usable_ranker,
)
from api.state import AppState
from infra.clients import AsyncRedis
from infra.errors import ServiceUnavailable
from schemas.settings import Settings
from search.client import async_opensearch_client
from search.query import (
    RESPONSE_FIELDS,
    SearchQuery,
    SearchResults,
    parse_response,
    search_body,
)

UNAVAILABLE = (OpenSearchException, aiohttp.ClientError, asyncio.TimeoutError, OSError)


class SearchService:
    """Searches the product index; one instance (and connection pool) per API process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = async_opensearch_client(settings)

    def _unavailable(self, reason: str) -> ServiceUnavailable:
        return ServiceUnavailable("OpenSearch", self.settings.opensearch_url, reason)

    async def search(self, query: SearchQuery) -> SearchResults:
        try:
            body: dict[str, Any] = await self.client.search(
                index=self.settings.search_index,
                body=search_body(query),
                filter_path=RESPONSE_FIELDS,
            )
        except NotFoundError:
            raise self._unavailable(
                f"the product index {self.settings.search_index} does not exist yet; "
                "run `tillflow search index`"
            ) from None
        except UNAVAILABLE as exc:
            raise self._unavailable(f"search failed: {type(exc).__name__}: {exc}"[:300]) from None
        return parse_response(body)

    async def check(self) -> str:
        """``ok`` when the cluster answers with a usable health, else what is wrong."""
        try:
            health = await self.client.cluster.health()
        except UNAVAILABLE as exc:
            return str(self._unavailable(f"{type(exc).__name__}: {exc}"[:200]))
        status = str(health.get("status"))
        return "ok" if status in ("green", "yellow") else f"cluster is {status}"

    async def close(self) -> None:
        await self.client.close()


async def personalised(state: AppState, results: SearchResults, user_id: str) -> SearchResults:
    """The page re-ranked for ``user_id``: search score (scaled to the page's best) plus
    ``search_personal_weight`` × the ranker's score over the same rows as recommendations.

    Unchanged when no ranker is loaded or the flows have not seen the shopper.
    """
    ranker = usable_ranker(state.models["ranker"])
    if ranker is None or not results.items:
        return results
    keys, reads = state.settings.keys, state.features
    categories = await state.catalogue_service.categories()

    async def read(client: AsyncRedis) -> tuple[dict[str, str], dict[str, Item]]:
        features = await read_shopper_features(client, reads, user_id)
        skus = [hit.sku for hit in results.items]
        return features, await read_items(client, keys, reads, skus, categories)

    # The ranker's rows need the shopper's features only (no list of theirs is ranked here),
    # so their stored lists are neither read nor parsed.
    features, items = await state.redis.run(read, raw=True)
    if not features:
        return results
    shopper = Shopper(user_id=user_id, again=[], discover=[], updated_at=None, features=features)
    best = max(hit.score for hit in results.items) or 1.0
    candidates = [ListedItem(h.sku, h.score / best, None) for h in results.items]
    scored = ranked(shopper, candidates, items, ranker, k=len(candidates))
    personal = {item.sku: item.score for item in scored.items}
    weight = state.settings.search_personal_weight
    hits = [
        hit.model_copy(
            update={
                "personal_score": personal[hit.sku],
                "score": round(hit.score / best + weight * personal[hit.sku], 6),
            }
        )
        for hit in results.items
    ]
    hits.sort(key=lambda h: -h.score)
    return results.model_copy(
        update={"items": hits, "ranked_by": "search+ranker", "model_version": ranker.label}
    )


def search_service(request: Request) -> SearchService:
    """The process's service, from the lifespan state of the search router."""
    return cast(SearchService, request.state.search)


async def readiness(request: Request) -> str:
    """OpenSearch's line in ``/readyz``: ``ok`` or what is wrong (only search needs it)."""
    return await search_service(request).check()
