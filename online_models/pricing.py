"""Choosing a price: maximise expected profit under guardrails, exploring a little.

With constant elasticity ``e`` demand is ``A·p^e`` and profit ``(p − c)·A·p^e`` peaks at
``p* = c·e / (1 + e)`` when ``e < −1``; for ``e ≥ −1`` profit grows with price up to the
ceiling. Thompson sampling draws ``e`` from the posterior, so prices explore where the model
is unsure and settle where it is sure. Guardrails then bound the result.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)  # no slots: unpickling slotted frozen classes is slow (snapshots)
class Guardrails:
    min_margin: float = 0.05  # floor: cost × (1 + min_margin)
    max_markup: float = 1.6  # ceiling: list price × max_markup
    max_change: float = 0.10  # at most ±10 % per update
    max_updates_per_hour: int = 2  # per product, in event time
    max_competitor_gap: float = 0.25  # at most 25 % above the lowest competitor
    short_cover_days: float = 3.0  # below this, raise by stock_step
    long_cover_days: float = 45.0  # above this, lower by stock_step
    stock_step: float = 0.05
    min_relative_change: float = 0.005  # smaller moves are not published


@dataclass(frozen=True, slots=True)
class PricingInput:
    current: float
    list_price: float
    unit_cost: float
    elasticity: float  # the (sampled) elasticity to optimise for
    min_competitor_price: float | None
    days_of_cover: float | None
    explore: float = 0.0  # log offset added to the profit-optimal target (price experiments)


@dataclass(frozen=True, slots=True)
class PriceDecision:
    price: float
    reason: str


def optimal_price(cost: float, elasticity: float, ceiling: float) -> float:
    """The profit-maximising price for constant elasticity (the ceiling if inelastic).

    >>> optimal_price(10.0, -2.0, 100.0)
    20.0
    >>> optimal_price(10.0, -0.8, 30.0)
    30.0
    """
    if elasticity >= -1.0:
        return ceiling
    return min(ceiling, cost * elasticity / (1.0 + elasticity))


def decide(inp: PricingInput, rails: Guardrails) -> PriceDecision | None:
    """The next price for one product, or None when it should stay as it is.

    >>> rails = Guardrails()
    >>> d = decide(PricingInput(10.0, 10.0, 6.0, -2.0, None, None), rails)
    >>> d.price, d.reason.split(";")[0]
    (11.0, 'profit-optimal 12.00 at elasticity -2.00')
    """
    floor = inp.unit_cost * (1.0 + rails.min_margin)
    ceiling = max(floor, inp.list_price * rails.max_markup)
    target = optimal_price(inp.unit_cost, inp.elasticity, ceiling)
    reasons = [f"profit-optimal {target:.2f} at elasticity {inp.elasticity:.2f}"]
    if inp.explore:
        target *= math.exp(inp.explore)
        reasons.append(f"exploring {inp.explore:+.1%}")
    if inp.days_of_cover is not None:
        if inp.days_of_cover < rails.short_cover_days:
            target *= 1.0 + rails.stock_step
            reasons.append(f"short cover {inp.days_of_cover:.1f} d: +{rails.stock_step:.0%}")
        elif inp.days_of_cover > rails.long_cover_days:
            target *= 1.0 - rails.stock_step
            reasons.append(f"overstock {inp.days_of_cover:.0f} d: -{rails.stock_step:.0%}")
    if inp.min_competitor_price is not None:
        cap = inp.min_competitor_price * (1.0 + rails.max_competitor_gap)
        if target > cap:
            target = cap
            reasons.append(f"competitor cap {cap:.2f}")
    low, high = inp.current * (1 - rails.max_change), inp.current * (1 + rails.max_change)
    if not low <= target <= high:
        target = min(max(target, low), high)
        reasons.append(f"step limited to ±{rails.max_change:.0%}")
    if target < floor or target > ceiling:
        target = min(max(target, floor), ceiling)
        reasons.append(f"bounded to [{floor:.2f}, {ceiling:.2f}]")
    price = round(target, 2)
    if abs(price - inp.current) < rails.min_relative_change * inp.current:
        return None
    return PriceDecision(price, "; ".join(reasons))


def thompson_elasticity(mean: float, std: float, rng: random.Random) -> float:
    """A draw of the elasticity, kept within plausible bounds."""
    return min(-0.1, max(-6.0, rng.gauss(mean, std)))
