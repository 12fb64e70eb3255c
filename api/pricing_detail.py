"""The pricing page's view of one product: history, demand curve, competitor, guardrails.

Pure functions over what Redis holds; ``api/prices.py`` does the reading.

>>> rails = guardrail_status(
...     price=11.0, unit_cost=6.0, list_price=10.0, min_competitor=12.0, changes_last_hour=1,
...     rails=Guardrails())
>>> rails.floor, rails.ceiling, rails.competitor_cap, rails.within
(6.3, 16.0, 15.0, True)
>>> [round(p.expected_units_24h, 2) for p in demand_curve(10.0, 8.0, -2.0, 5.0, 20.0, points=3)]
[32.0, 5.12, 2.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from governance.explain import Explanation
from online_models.pricing import Guardrails
from schemas.catalogue import CatalogueItem
from schemas.events import PriceUpdate
from schemas.serving import PriceView

TOP_CONTRIBUTIONS = 6


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


class FeatureContribution(BaseModel):
    feature: str
    value: float = Field(description="The feature's value in the forecast's input row.")
    contribution: float = Field(
        description="Its TreeSHAP value in the model's raw score space "
        "(log units for the Poisson demand model)."
    )
    factor: float = Field(description="What it multiplies the forecast by (exp(contribution)).")


class ForecastExplanation(BaseModel):
    """Why the demand model forecasts what it does: base × Π factors = forecast."""

    model: str = Field(description="The model version explained (the one serving the forecast).")
    base_units: float = Field(description="The forecast with no feature information.")
    forecast_units: float
    top: list[FeatureContribution] = Field(description="The largest effects, largest first.")
    other_factor: float = Field(description="The product of the remaining features' factors.")


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
    explanation: ForecastExplanation | None = Field(
        None,
        description="Why this forecast: the demand model's per-feature contributions "
        "(absent while no model with its native booster is loaded).",
    )


def forecast_explanation(
    explanation: Explanation, model: str, top: int = TOP_CONTRIBUTIONS
) -> ForecastExplanation:
    """The response form of an explanation: the ``top`` largest effects and the rest as one.

    >>> from governance.explain import Contribution
    >>> parts = tuple(Contribution(f, 1.0, c, math.exp(c)) for f, c in
    ...               (("price", -0.5), ("units_24h", 0.3), ("weekday", 0.01)))
    >>> e = forecast_explanation(Explanation(2.0, 2.0 * math.exp(-0.19), "log", parts), "d:v1", 2)
    >>> [c.feature for c in e.top], round(e.other_factor, 4)
    (['price', 'units_24h'], 1.0101)
    """
    shown, rest = explanation.contributions[:top], explanation.contributions[top:]
    return ForecastExplanation(
        model=model,
        base_units=round(explanation.base, 4),
        forecast_units=round(explanation.forecast, 4),
        top=[
            FeatureContribution(
                feature=c.feature,
                value=c.value,
                contribution=round(c.contribution, 6),
                factor=round(c.factor, 6),
            )
            for c in shown
        ],
        other_factor=math.prod(c.factor for c in rest),
    )


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


def pricing_detail(
    view: PriceView,
    item: CatalogueItem | None,
    features: Mapping[str, str],
    changes: Sequence[PriceUpdate],
    changes_last_hour: int,
    explained: tuple[Explanation, str] | None,
) -> PricingDetail:
    """The page's view of a product from its price ``view``, catalogue ``item``, online
    ``features`` (text by name), past ``changes`` (oldest first) and the demand model's
    explanation of its forecast with the model's label, when there is one."""
    f = features
    min_comp = float(f["min_competitor_price"]) if f.get("min_competitor_price") else None
    min_comp = min_comp or None  # the flows write 0 when no competitor price was seen
    status = None
    curve: list[CurvePoint] = []
    if item is not None:
        status = guardrail_status(
            price=view.price,
            unit_cost=item.unit_cost,
            list_price=item.list_price,
            min_competitor=min_comp,
            changes_last_hour=changes_last_hour,
            rails=Guardrails(),
        )
        units = float(f.get("units_24h", "0") or 0)
        if view.elasticity is not None and units > 0:
            high = (
                status.ceiling
                if status.competitor_cap is None
                else min(status.ceiling, status.competitor_cap)
            )
            curve = demand_curve(view.price, units, view.elasticity, status.floor, high)
    return PricingDetail(
        sku=view.sku,
        category=None if item is None else item.category,
        unit_cost=None if item is None else item.unit_cost,
        list_price=None if item is None else item.list_price,
        current=view,
        history=[
            HistoryPoint(
                at=c.event_time,
                price=float(c.price),
                previous_price=float(c.previous_price),
                reason=c.reason,
            )
            for c in changes
        ],
        min_competitor_price=min_comp,
        competitor_gap=None if min_comp is None else round((view.price - min_comp) / min_comp, 4),
        on_hand=int(float(f["on_hand"])) if f.get("on_hand") else None,
        days_of_cover=float(f["days_of_cover"]) if f.get("days_of_cover") else None,
        units_24h=float(f["units_24h"]) if f.get("units_24h") else None,
        demand_curve=curve,
        guardrails=status,
        explanation=None if explained is None else forecast_explanation(*explained),
    )
