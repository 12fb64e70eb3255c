"""``GET /products`` (catalogue with live prices) and ``GET /pricing/{sku}`` (the pricing page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from api.catalogue import Product
from api.deps import Catalogue, Prices
from api.ids import SkuPath
from api.pricing_detail import PricingDetail

router = APIRouter(tags=["products"])


@router.get(
    "/products",
    response_model=list[Product],
    summary="The catalogue with the prices published now",
    responses={503: {"description": "Redis is unavailable."}},
)
async def products(
    catalogue: Catalogue,
    category: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Product]:
    return await catalogue.products(category, limit, offset)


@router.get(
    "/pricing/{sku:path}",
    response_model=PricingDetail,
    summary="Everything the pricing page shows for one product",
    responses={404: {"description": "Unknown sku."}, 503: {"description": "Redis unavailable."}},
)
async def pricing(
    sku: SkuPath,
    prices: Prices,
    history: Annotated[int, Query(ge=1, le=1000, description="How many past changes.")] = 200,
) -> PricingDetail:
    found = await prices.detail(sku, history)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown sku {sku!r}")
    return found
