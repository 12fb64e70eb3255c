"""``GET /prices/{sku}`` and ``GET /prices?skus=…``: published prices with their model."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from api.cache import read_through
from api.deps import State
from api.prices import PriceView, price_view, read_priced
from api.responses import JsonBytes, json_object, model_json
from api.state import AppState

router = APIRouter(tags=["prices"])

MAX_SKUS = 200
SKU_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "Redis is unavailable and no last-known value exists."}
}


async def lookup(state: AppState, skus: list[str]) -> dict[str, bytes]:
    """Each known sku's answer (JSON): cache, then Redis, then last-known (``stale``)."""
    keys, reads = state.settings.keys, state.features
    demand = state.models["demand"].model
    found = await read_through(
        state.redis,
        state.prices,
        skus,
        lambda client, missing: read_priced(client, keys, reads, missing, demand),
        raw=True,
    )
    if found.error is not None and found.unavailable:
        raise found.error
    for result, n in (("hit", found.hits), ("miss", found.misses), ("stale", len(found.stale))):
        state.metrics.count_lookups("price", result, n)
    label = None if demand is None else demand.label
    stale = set(found.stale)
    return {
        sku: p.body
        if sku not in stale and p.model == label
        else model_json(price_view(p.state, stale=sku in stale, demand=demand))
        for sku, p in found.values.items()
    }


@router.get(
    "/prices/{sku}",
    response_model=PriceView,
    summary="A product's current price, previous price and elasticity",
    responses={404: {"description": "Unknown sku."}, **_UNAVAILABLE},
)
async def get_price(sku: Annotated[str, Path(pattern=SKU_PATTERN)], state: State) -> JsonBytes:
    bodies = await lookup(state, [sku])
    if sku not in bodies:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown sku {sku!r}")
    return JsonBytes(bodies[sku])


def parse_skus(text: str) -> list[str]:
    """``"a, b,a"`` → ``["a", "b"]``; 422 when empty, too many or malformed."""
    skus = list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not skus:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "skus: give at least one sku")
    if len(skus) > MAX_SKUS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"skus: at most {MAX_SKUS} per request"
        )
    bad = [s for s in skus if not re.fullmatch(SKU_PATTERN, s)]
    if bad:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"skus: malformed sku {bad[0]!r}"
        )
    return skus


@router.get(
    "/prices",
    response_model=dict[str, PriceView],
    summary="Several products' prices at once",
    description=f"`skus` is a comma-separated list (at most {MAX_SKUS}); unknown skus are "
    "left out of the answer.",
    responses=_UNAVAILABLE,
)
async def get_prices(
    state: State,
    skus: Annotated[str, Query(min_length=1, max_length=MAX_SKUS * 130, examples=["SKU-00001"])],
) -> JsonBytes:
    return JsonBytes(json_object(await lookup(state, parse_skus(skus))))
