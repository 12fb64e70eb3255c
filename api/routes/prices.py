"""``GET /prices/{sku}`` and ``GET /prices?skus=…``: published prices with their model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import Prices
from api.ids import MAX_SKUS, SKUS_MAX_CHARS, SkuPath, parse_skus
from api.prices import unknown_sku
from api.responses import JsonBytes, json_object
from schemas.serving import PriceView

router = APIRouter(tags=["prices"])

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "Redis is unavailable and no last-known value exists."}
}


@router.get(
    "/prices/{sku:path}",
    response_model=PriceView,
    summary="A product's current price, previous price and elasticity",
    responses={404: {"description": "Unknown sku."}, **_UNAVAILABLE},
)
async def get_price(sku: SkuPath, prices: Prices) -> JsonBytes:
    body = await prices.answer(sku)
    if body is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, unknown_sku(sku))
    return JsonBytes(body)


@router.get(
    "/prices",
    response_model=dict[str, PriceView],
    summary="Several products' prices at once",
    description=f"`skus` is a comma-separated list (at most {MAX_SKUS}); unknown skus are "
    "left out of the answer.",
    responses=_UNAVAILABLE,
)
async def get_prices(
    prices: Prices,
    skus: Annotated[str, Query(min_length=1, max_length=SKUS_MAX_CHARS, examples=["SKU-00001"])],
) -> JsonBytes:
    return JsonBytes(json_object(await prices.answers(parse_skus(skus))))
