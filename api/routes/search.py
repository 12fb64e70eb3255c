"""``GET /search``: products by text, category and price, with facets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, cast

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Security, status

from api.auth import bearer, session_cookie, shopper_reader
from api.deps import State
from api.problems import responses
from api.responses import JsonBytes, model_json
from api.search import SearchService, personalised, search_service
from api.state import AppState
from search.query import SearchQuery, SearchResults, Sort

MAX_PAGE = 100
MAX_WINDOW = 10_000  # OpenSearch's index.max_result_window: offset + size stays within it


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, SearchService]]:
    """One OpenSearch client for the API's lifetime, in the lifespan state."""
    state = cast(AppState, app.state.tillflow)
    service = SearchService(state.settings)
    try:
        yield {"search": service}
    finally:
        await service.close()


router = APIRouter(tags=["search"], lifespan=lifespan)


@router.get(
    "/search",
    response_model=SearchResults,
    summary="Search products by text, with category and price facets",
    description="Typo-tolerant text search over product names, brands, categories and "
    "descriptions (fuzzy matching; exact words in the name or brand, and the exact phrase in "
    "the name, weigh more), blended with popularity. "
    "`category`, `min_price` and `max_price` filter the results; `facets` count categories "
    "and price buckets under the other filters. With `user`, the registry's ranker re-ranks "
    "the page for that shopper (`ranked_by: search+ranker`); like the shopper's "
    "recommendations, that needs the shopper's session (`POST /session`) or an admin token. "
    "Prices are the ones published now, indexed from the stream.",
    responses={
        **responses(401, 403),
        422: {
            "description": "Invalid parameters (e.g. `min_price` above `max_price`, or "
            "`offset` + `size` above 10,000)."
        },
        503: {"description": "OpenSearch is unavailable (or the product index does not exist)."},
    },
    dependencies=[Security(bearer), Security(session_cookie)],
)
async def search(
    request: Request,
    state: State,
    q: Annotated[str | None, Query(max_length=200, description="Search text.")] = None,
    category: Annotated[str | None, Query(max_length=128)] = None,
    min_price: Annotated[float | None, Query(ge=0, le=1e9)] = None,
    max_price: Annotated[float | None, Query(ge=0, le=1e9)] = None,
    sort: Annotated[
        Sort, Query(description="`relevance`, `price` (low first) or `popularity`.")
    ] = "relevance",
    user: Annotated[
        str | None, Query(min_length=1, max_length=128, description="Shopper to personalise for.")
    ] = None,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_WINDOW - 1)] = 0,
) -> JsonBytes:
    if user is not None:  # personalising reads the shopper's history: theirs to read only
        shopper_reader(request, user)
    if min_price is not None and max_price is not None and min_price > max_price:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "min_price must not be above max_price"
        )
    if offset + size > MAX_WINDOW:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"offset + size must be at most {MAX_WINDOW}"
        )
    query = SearchQuery(
        q=(q or "").strip() or None,
        category=category,
        min_price=min_price,
        max_price=max_price,
        sort=sort,
        size=size,
        offset=offset,
        popularity_weight=state.settings.search_popularity_weight,
    )
    results = await search_service(request).search(query)
    if user is not None and sort == "relevance":
        results = await personalised(state, results, user)
    return JsonBytes(model_json(results))
