"""``GET /products`` (catalogue with live prices) and ``GET /pricing/{sku}`` (the pricing page)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel

from api.deps import State
from api.prices import explain_forecast, price_view, read_price_states
from api.pricing_detail import (
    HistoryPoint,
    PricingDetail,
    demand_curve,
    forecast_explanation,
    guardrail_status,
)
from api.routes.prices import SKU_PATTERN
from infra.clients import AsyncRedis
from online_models.pricing import Guardrails

router = APIRouter(tags=["products"])


class Product(BaseModel):
    sku: str
    name: str | None = None
    category: str
    list_price: float
    price: float


@router.get(
    "/products",
    response_model=list[Product],
    summary="The catalogue with the prices published now",
    responses={503: {"description": "Redis is unavailable."}},
)
async def products(
    state: State,
    category: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Product]:
    keys = state.settings.keys

    async def read(client: AsyncRedis) -> tuple[dict[str, str], dict[str, str]]:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(keys.catalogue)
        pipe.hgetall(keys.current_prices)
        catalogue, current = await pipe.execute()
        return catalogue, current

    catalogue, current = await state.redis.run(read)
    items = [orjson.loads(v) for _, v in sorted(catalogue.items())]
    if category is not None:
        items = [i for i in items if i["category"] == category]
    return [
        Product(
            sku=i["sku"],
            name=i.get("name"),
            category=i["category"],
            list_price=i["list_price"],
            price=float(current.get(i["sku"], i["list_price"])),
        )
        for i in items[offset : offset + limit]
    ]


@router.get(
    "/pricing/{sku}",
    response_model=PricingDetail,
    summary="Everything the pricing page shows for one product",
    responses={404: {"description": "Unknown sku."}, 503: {"description": "Redis unavailable."}},
)
async def pricing(
    sku: Annotated[str, Path(pattern=SKU_PATTERN)],
    state: State,
    history: Annotated[int, Query(ge=1, le=1000, description="How many past changes.")] = 200,
) -> PricingDetail:
    keys = state.settings.keys

    async def read(client: AsyncRedis) -> tuple[Any, list[tuple[bytes, float]]]:
        states = await read_price_states(client, keys, state.features, [sku])
        past = await client.zrange(keys.price_history(sku), -history, -1, withscores=True)
        return states.get(sku), past

    found, past = await state.redis.run(read, raw=True)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown sku {sku!r}")
    demand = state.models["demand"].model
    when = datetime.now(UTC)
    view = price_view(found, demand=demand, when=when)
    explanation = None
    if demand is not None:
        explained = explain_forecast(found, view.price, demand, when)
        if explained is not None:
            explanation = forecast_explanation(explained, demand.label)
    f = found.features
    min_comp = float(f["min_competitor_price"]) if f.get("min_competitor_price") else None
    min_comp = min_comp or None  # the flows write 0 when no competitor price was seen
    item = found.catalogue or {}
    points = []
    for raw, _score in past:
        event = orjson.loads(raw)
        points.append(
            HistoryPoint(
                at=event["event_time"],
                price=event["price"],
                previous_price=event["previous_price"],
                reason=event["reason"],
            )
        )
    now = time.time()
    recent = sum(1 for _, score in past if score >= now - 3600)
    rails = Guardrails()
    status_ = None
    curve = []
    if item:
        status_ = guardrail_status(
            price=view.price,
            unit_cost=item["unit_cost"],
            list_price=item["list_price"],
            min_competitor=min_comp,
            changes_last_hour=recent,
            rails=rails,
        )
        units = float(f.get("units_24h", "0") or 0)
        if view.elasticity is not None and units > 0:
            high = (
                status_.ceiling
                if status_.competitor_cap is None
                else min(status_.ceiling, status_.competitor_cap)
            )
            curve = demand_curve(view.price, units, view.elasticity, status_.floor, high)
    return PricingDetail(
        sku=sku,
        category=item.get("category"),
        unit_cost=item.get("unit_cost"),
        list_price=item.get("list_price"),
        current=view,
        history=points,
        min_competitor_price=min_comp,
        competitor_gap=None if min_comp is None else round((view.price - min_comp) / min_comp, 4),
        on_hand=int(float(f["on_hand"])) if f.get("on_hand") else None,
        days_of_cover=float(f["days_of_cover"]) if f.get("days_of_cover") else None,
        units_24h=float(f["units_24h"]) if f.get("units_24h") else None,
        demand_curve=curve,
        guardrails=status_,
        explanation=explanation,
    )
