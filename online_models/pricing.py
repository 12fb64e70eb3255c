"""Choosing a price: maximise expected profit under guardrails, with a price test.

With constant elasticity ``e`` demand is ``A·p^e`` and profit ``(p − c)·A·p^e`` peaks at
``p* = c·e / (1 + e)`` when ``e < −1``; for ``e ≥ −1`` profit grows with price up to the
ceiling. Thompson sampling draws ``e`` from the posterior, so prices explore where the model
is unsure and settle where it is sure. Guardrails bound the result; a deliberate price test
(two legs either side of it, inside the guardrails' band) keeps the prices moving enough for
the elasticity to be learned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_TEST = 0.005  # log half-width below which a price test is not worth a decision


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
    max_test_cost: float = 0.01  # a price test loses at most this share of expected profit

    def bounds(
        self, unit_cost: float, list_price: float, competitor: float | None
    ) -> tuple[float, float, float]:
        """The floor, the ceiling and the highest price the competitor cap allows (the
        ceiling without a competitor price), never below the floor.

        >>> Guardrails().bounds(10.0, 20.0, 15.0)
        (10.5, 32.0, 18.75)
        """
        floor = unit_cost * (1.0 + self.min_margin)
        ceiling = max(floor, list_price * self.max_markup)
        if competitor is None:
            return floor, ceiling, ceiling
        return (
            floor,
            ceiling,
            max(floor, min(ceiling, competitor * (1.0 + self.max_competitor_gap))),
        )


@dataclass(frozen=True, slots=True)
class PricingInput:
    current: float
    list_price: float
    unit_cost: float
    elasticity: float  # the (sampled) elasticity to optimise for
    min_competitor_price: float | None
    days_of_cover: float | None
    explore: float = 0.0  # largest log half-width of a price test; its sign picks the leg


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


def price_test(price: float, low: float, high: float, offset: float) -> float:
    """One leg of a price test: ``price`` moved by ``offset`` in log price, the test's two
    legs (``±offset`` around a centre) kept inside ``[low, high]``.

    Where the profit-optimal price sits on a bound (the competitor cap, the ceiling), the
    test shifts away from it instead of losing its upper leg: both legs are priced, so the
    test keeps its full width and the product's prices keep telling its elasticity.

    >>> round(price_test(10.0, 5.0, 20.0, 0.05), 2), round(price_test(10.0, 5.0, 20.0, -0.05), 2)
    (10.51, 9.51)
    >>> round(price_test(10.0, 5.0, 10.0, 0.05), 2), round(price_test(10.0, 5.0, 10.0, -0.05), 2)
    (10.0, 9.05)
    """
    half = abs(offset)
    width = math.log(high / low) if high > low else 0.0
    if width <= 2 * half:
        centre, half = math.sqrt(low * high), width / 2
    else:
        centre = min(max(price, low * math.exp(half)), high * math.exp(-half))
    return centre * math.exp(math.copysign(half, offset))


def price_test_cost(
    target: float, half: float, low: float, high: float, cost: float, e: float
) -> float:
    """The share of the profit at ``target`` that a test of log half-width ``half`` loses
    (its two legs held equally long), under demand of constant elasticity ``e``.

    >>> round(price_test_cost(12.0, 0.05, 7.0, 20.0, 6.0, -2.0), 4)  # at the optimum: ½·k·half²
    0.0025
    >>> round(price_test_cost(10.0, 0.05, 7.0, 10.0, 6.0, -1.5), 4)  # on the ceiling: legs below it
    0.0573
    """

    return _test_cost(target, half, low, high, cost, e, 2.0 * _profit(target, cost, e))


def _test_cost(
    target: float, half: float, low: float, high: float, cost: float, e: float, both: float
) -> float:
    """``price_test_cost`` given ``both``, twice the profit at ``target`` (the two legs' share)."""
    legs = price_test(target, low, high, half), price_test(target, low, high, -half)
    return 1.0 - (_profit(legs[0], cost, e) + _profit(legs[1], cost, e)) / both


def _profit(price: float, cost: float, e: float) -> float:
    """Profit per unit of demand at ``price`` under constant elasticity ``e`` (up to a scale)."""
    return float((price - cost) * price**e)


def price_test_size(
    target: float, size: float, low: float, high: float, cost: float, e: float, budget: float
) -> float:
    """The widest test half-width up to ``size`` (tried in steps of 0.7×) that loses at most
    ``budget`` of the profit at ``target``; 0 when even a small one would lose more.

    Where the target is the profit optimum a test loses ~½·k·half² (k the curvature of log
    profit, e(1+e) there); where it sits on a bound the profit still rises toward, the test
    moves below the bound and loses ~g·half (g that slope), so tests there are narrower.
    """
    half = abs(size)
    both = 2.0 * _profit(target, cost, e)  # the profit at target, once for every width
    while half >= MIN_TEST:
        if _test_cost(target, half, low, high, cost, e, both) <= budget:
            return half
        half *= 0.7
    return 0.0


def decide(inp: PricingInput, rails: Guardrails) -> PriceDecision | None:
    """The next price for one product, or None when it should stay as it is.

    >>> rails = Guardrails()
    >>> d = decide(PricingInput(10.0, 10.0, 6.0, -2.0, None, None), rails)
    >>> d.price, d.reason.split(";")[0]
    (11.0, 'profit-optimal 12.00 at elasticity -2.00')
    """
    floor, ceiling, upper = rails.bounds(inp.unit_cost, inp.list_price, inp.min_competitor_price)
    target = optimal_price(inp.unit_cost, inp.elasticity, ceiling)
    reasons = [f"profit-optimal {target:.2f} at elasticity {inp.elasticity:.2f}"]
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
    if inp.explore:
        centre = min(max(target, floor), upper)
        half = price_test_size(
            centre, inp.explore, floor, upper, inp.unit_cost, inp.elasticity, rails.max_test_cost
        )
        if half > 0:
            target = price_test(centre, floor, upper, math.copysign(half, inp.explore))
            leg = "high" if inp.explore > 0 else "low"
            reasons.append(f"price test ±{half:.1%}: {leg} leg {target:.2f}")
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


def plausible_elasticity(elasticity: float) -> float:
    """``elasticity`` kept within plausible bounds (−6 to −0.1)."""
    return min(-0.1, max(-6.0, elasticity))
