"""``GET /recommendations/{user_id}``: the shopper's top-k, ranked when a ranker is loaded."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import State
from api.recommendations import Candidates, Recommendations, read_candidates, without_ranker
from api.state import AppState
from infra.stack.errors import ServiceUnavailable

router = APIRouter(tags=["recommendations"])

USER_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
MAX_K = 50


async def candidates_for(state: AppState, user_id: str) -> tuple[Candidates, bool]:
    """The shopper's candidates and whether they are stale (cache, Redis, last-known)."""
    now = time.monotonic()
    lookups = state.metrics.lookups
    cached = state.candidates.fresh(user_id, now)
    if cached is not None:
        lookups.labels(kind="recommendations", result="hit").inc()
        return cached, False
    keys = state.settings.keys
    try:
        found = await state.redis.run(
            lambda client: read_candidates(client, keys, user_id, depth=MAX_K)
        )
    except ServiceUnavailable:
        last = state.candidates.last(user_id)
        if last is None:
            raise
        lookups.labels(kind="recommendations", result="stale").inc()
        return last, True
    lookups.labels(kind="recommendations", result="miss").inc()
    state.candidates.put(user_id, found, now)
    return found, False


@router.get(
    "/recommendations/{user_id}",
    response_model=Recommendations,
    summary="A shopper's recommended products",
    description="Candidates from the streaming recommender (item co-occurrence over the "
    "shopper's recent views and purchases); a popularity list for shoppers the flows have "
    "not seen yet. `source` says which served the answer.",
    responses={503: {"description": "Redis is unavailable and no last-known list exists."}},
)
async def get_recommendations(
    user_id: Annotated[str, Path(pattern=USER_PATTERN)],
    state: State,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many items.")] = 10,
) -> Recommendations:
    return await recommendations_for(state, user_id, k)


async def recommendations_for(state: AppState, user_id: str, k: int) -> Recommendations:
    """What both the route and the websocket serve."""
    found, stale = await candidates_for(state, user_id)
    return without_ranker(found, k, stale=stale)
