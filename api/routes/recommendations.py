"""``GET /recommendations/{user_id}``: the shopper's top-k, ranked when a ranker is loaded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Security

from api.auth import bearer, session_cookie, shopper_reader
from api.cache import LastKnown, read_through
from api.deps import State
from api.problems import responses
from api.recommendations import (
    Item,
    Recommendations,
    RecommendedItem,
    Shopper,
    pool,
    ranked,
    read_items,
    read_popular,
    read_shopper,
    without_ranker,
)
from api.responses import JsonBytes, model_json
from api.state import AppState
from api.tokens import Claims
from infra.clients import AsyncRedis
from schemas.serving import ListName

router = APIRouter(tags=["recommendations"])

USER_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
MAX_K = 50
POPULAR_DEPTH = 2 * MAX_K
CANDIDATES_MAX = 2 * MAX_K  # the ranker's pool for k items: max(2k, 20) candidates
T = TypeVar("T")
LIST_HELP = (
    "`again`: the shopper's own items (buy again, continue); `discover`: items they have not "
    "interacted with (similar to their history, their categories' best sellers, popular); "
    "`mixed`: both interleaved."
)


async def _cached(
    state: AppState,
    cache: LastKnown[T],
    key: str,
    read: Callable[[AsyncRedis], Awaitable[T]],
    *,
    raw: bool = False,
) -> tuple[T, str]:
    """``cache[key]`` when fresh (hit), else Redis (miss), else the last-known value (stale)."""

    async def one(client: AsyncRedis, _missing: list[str]) -> dict[str, T]:
        return {key: await read(client)}

    found = await read_through(state.redis, cache, [key], one, raw=raw)
    if found.error is not None and found.unavailable:
        raise found.error
    return found.values[key], "hit" if found.hits else "stale" if found.stale else "miss"


async def recommendations_for(
    state: AppState, user_id: str, k: int, name: ListName = "mixed"
) -> Recommendations:
    """What both the route and the websocket serve."""
    keys = state.settings.keys
    ranker = state.models["ranker"].model
    shopper, result = await _cached(
        state,
        state.shoppers,
        user_id,
        lambda client: read_shopper(
            client,
            keys,
            state.features,
            user_id,
            with_features=ranker is not None,
            discover_k=CANDIDATES_MAX,
        ),
        raw=True,
    )
    state.metrics.count_lookups("recommendations", result)
    popular, popular_result = await _cached(
        state, state.popular, "top", lambda client: read_popular(client, keys, POPULAR_DEPTH)
    )
    stale = "stale" in (result, popular_result)
    if ranker is None or not shopper.known:
        return without_ranker(shopper, name, popular, k, stale=stale)
    candidates = pool(shopper, name, popular, max(2 * k, 20))
    items, stale_items = await _items(state, candidates)
    return ranked(shopper, candidates, items, ranker, k, name=name, stale=stale or stale_items)


async def _items(
    state: AppState, candidates: list[RecommendedItem]
) -> tuple[dict[str, Item], bool]:
    """Each candidate's features and category: shared cache first, one pipeline for the rest;
    True when Redis was unavailable (last-known items, where there are any)."""
    keys, reads = state.settings.keys, state.features
    found = await read_through(
        state.redis,
        state.items,
        [c.sku for c in candidates],
        lambda client, missing: read_items(client, keys, reads, missing),
        raw=True,
    )
    return found.values, found.error is not None


def _own_list(request: Request, user_id: Annotated[str, Path(pattern=USER_PATTERN)]) -> Claims:
    return shopper_reader(request, user_id)


@router.get(
    "/recommendations/{user_id}",
    response_model=Recommendations,
    summary="A shopper's recommended products",
    description="One of the shopper's lists from the streaming recommender (`list`: buy "
    "again, discover, or both interleaved), re-ranked by the registry's current ONNX ranker "
    "over the shopper's and items' online features; a popularity list for shoppers the flows "
    "have not seen yet. `source` says which served. "
    "Readable with that shopper's session (`POST /session`) or an admin token only.",
    responses=responses(401, 403, 429, 503),
    dependencies=[Security(bearer), Security(session_cookie)],
)
async def get_recommendations(
    user_id: Annotated[str, Path(pattern=USER_PATTERN)],
    state: State,
    _reader: Annotated[Claims, Depends(_own_list)],
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many items.")] = 10,
    list_name: Annotated[ListName, Query(alias="list", description=LIST_HELP)] = "mixed",
) -> JsonBytes:
    return JsonBytes(model_json(await recommendations_for(state, user_id, k, list_name)))


__all__ = ["USER_PATTERN", "Shopper", "recommendations_for", "router"]
