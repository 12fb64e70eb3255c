"""The pricing page's view of one product: history, demand curve, competitor, guardrails.

Pure functions over what Redis holds; the route does the reading.

>>> rails = guardrail_status(
...     price=11.0, unit_cost=6.0, list_price=10.0, min_competitor=12.0, changes_last_hour=1,
...     rails=Guardrails())
>>> rails.floor, rails.ceiling, rails.competitor_cap, rails.within
(6.3, 16.0, 15.0, True)
>>> [round(p.expected_units_24h, 2) for p in demand_curve(10.0, 8.0, -2.0, 5.0, 20.0, points=3)]
[32.0, 5.12, 2.0]
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.prices import PriceView
from online_models.pricing import Guardrails


class HistoryPoint(BaseModel):
    at: datetime
    price: float
    previous_price: float
    reason: str


class CurvePoint(BaseModel):
    price: float
    expected_units_24h: float


class GuardrailStatus(BaseModel):
    floor: float = Field(description="Unit cost × (1 + minimum margin).")
    ceiling: float = Field(description="List price × maximum markup.")
    competitor_cap: float | None = Field(description="Lowest competitor × (1 + maximum gap).")
    max_step: float = Field(description="Largest relative change per update.")
    changes_last_hour: int
    max_changes_per_hour: int
    within: bool = Field(description="The current price respects floor, ceiling and cap.")
    notes: list[str]


class PricingDetail(BaseModel):
    sku: str
    category: str | None
    unit_cost: float | None
    list_price: float | None
    current: PriceView
    history: list[HistoryPoint]
    min_competitor_price: float | None
    competitor_gap: float | None = Field(description="(price − lowest competitor) / lowest.")
    on_hand: int | None
    days_of_cover: float | None
    units_24h: float | None
    demand_curve: list[CurvePoint] = Field(
        description="Expected units over 24 h across the allowed price range, from the "
        "learned elasticity (constant-elasticity demand through today's sales)."
    )
    guardrails: GuardrailStatus | None


def guardrail_status(
    *,
    price: float,
    unit_cost: float,
    list_price: float,
    min_competitor: float | None,
    changes_last_hour: int,
    rails: Guardrails,
) -> GuardrailStatus:
    floor = round(unit_cost * (1.0 + rails.min_margin), 4)
    ceiling = round(max(floor, list_price * rails.max_markup), 4)
    cap = None if not min_competitor else round(min_competitor * (1 + rails.max_competitor_gap), 4)
    notes = []
    if price < floor - 1e-9:
        notes.append(f"below the floor {floor:.2f}")
    if price > ceiling + 1e-9:
        notes.append(f"above the ceiling {ceiling:.2f}")
    if cap is not None and price > cap + 1e-9:
        notes.append(f"above the competitor cap {cap:.2f}")
    if changes_last_hour >= rails.max_updates_per_hour:
        notes.append("hourly change budget used: next change waits")
    return GuardrailStatus(
        floor=floor,
        ceiling=ceiling,
        competitor_cap=cap,
        max_step=rails.max_change,
        changes_last_hour=changes_last_hour,
        max_changes_per_hour=rails.max_updates_per_hour,
        within=not any(n.startswith(("below", "above")) for n in notes),
        notes=notes,
    )


def demand_curve(
    price: float, units_24h: float, elasticity: float, low: float, high: float, points: int = 25
) -> list[CurvePoint]:
    """Constant-elasticity demand through (``price``, ``units_24h``) from ``low`` to ``high``."""
    if points < 2 or high <= low or price <= 0:
        return []
    step = (high - low) / (points - 1)
    grid = [low + i * step for i in range(points)]
    return [
        CurvePoint(price=round(p, 4), expected_units_24h=units_24h * (p / price) ** elasticity)
        for p in grid
    ]
