"""The dynamic price of one product: its demand model, its guardrails and its history.

Decisions are taken when evidence arrives (a views bucket or an hours bucket closes: by views,
by sales, or because time passed without a sale) and, where nothing closes, at least every
``DECIDE_EVERY_S`` of event time, so a shop that sends only till orders is priced from the
first day. Each decision prices a draw of the elasticity from its posterior with half the
posterior's std (tempered Thompson sampling: prices still follow the uncertainty, at about a
quarter of a full draw's cost in profit). The draw's standard normal deviate is drawn at the
day's first decision (event time, the demand model's day) and held for the day, so the day's
decisions price ``mean + z·std/2`` of a posterior that moves only as its evidence does: the
legs of the price test alternate around a centre that does not jump between them (a fresh
draw between two legs would lean the evidence toward its prior), while the price still
follows what the day's sales and views say. Every decision says why: the elasticity ± std
and the evidence behind it.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import deque
from dataclasses import dataclass, field

from online_models.drift import ErrorDrift
from online_models.elasticity import DAY_S, DEFAULT_CONFIG, ElasticityConfig, ElasticityModel
from online_models.pooling import CategoryPool
from online_models.pricing import (
    Guardrails,
    PriceDecision,
    PricingInput,
    decide,
    plausible_elasticity,
)

MODEL_NAME = "elasticity-poisson"
EXPLORE_UNTIL_STD = 0.25  # a full-width price test while the elasticity's std is at least this
DECIDE_EVERY_S = 2 * 3600.0  # a decision at least this often in event time
THOMPSON_SCALE = 0.5  # the draw's std as a share of the posterior's (tempered Thompson sampling)
# The guardrails of every product not given its own: one object, pickled once per category
# snapshot (as the elasticity's DEFAULT_CONFIG), not once per product.
DEFAULT_RAILS = Guardrails()


@dataclass(frozen=True, slots=True)
class PriceChange:
    """A published change: what it was, what it is, why, and under which model state."""

    sku: str
    price: float
    previous_price: float
    reason: str
    model_version: str
    t: float
    sequence: int

    def __reduce__(self) -> tuple[type[PriceChange], tuple[object, ...]]:
        # Each product's latest change is in its category's snapshot every epoch: built from
        # its fields, without the Python that dataclasses' own __getstate__ runs to list them.
        args = (self.sku, self.price, self.previous_price, self.reason, self.model_version)
        return PriceChange, (*args, self.t, self.sequence)


@dataclass(frozen=True, slots=True)
class Market:
    """What the pricer knows of the product's surroundings at a decision."""

    min_competitor_price: float | None = None
    days_of_cover: float | None = None


@dataclass
class ProductPricer:
    """Learns one product's elasticity from views, sales and time, and re-prices it.

    Everything here is plain state (picklable), so Bytewax snapshots it for recovery.
    """

    sku: str
    list_price: float
    unit_cost: float
    rails: Guardrails = DEFAULT_RAILS
    config: ElasticityConfig = DEFAULT_CONFIG
    price: float = 0.0
    demand: ElasticityModel = field(init=False)
    drift: ErrorDrift = field(default_factory=ErrorDrift)
    changes: int = 0
    decisions: int = 0
    last_decision: float | None = None
    reason: str = ""  # why the latest decision set or kept the price
    held_day: int = -1  # the day (event time) whose draw prices its decisions
    held_deviate: float = 0.0  # that draw's standard normal deviate
    _recent: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.price = self.price or self.list_price
        self.demand = ElasticityModel(self.sku, self.list_price, self.config)

    def _rng(self) -> random.Random:
        """The random stream of the next decision: a function of the product and decision
        count, so a replay draws the same, and no generator state is snapshotted."""
        return random.Random(zlib.crc32(f"{self.sku}:{self.decisions}".encode()))

    @property
    def model_version(self) -> str:
        return f"{MODEL_NAME}@{self.demand.observations}"

    def _market(self, market: Market) -> None:
        lowest = market.min_competitor_price
        self.demand.competitor = math.log(lowest / self.list_price) if lowest else 0.0

    # ---------------------------------------------------------------- signals
    def start(self, t: float) -> None:
        """The product's first signal: from now on, time without sales is evidence."""
        self.demand.start(self.price, t)
        if self.last_decision is None:
            self.last_decision = t

    def on_view(
        self, t: float, market: Market, pool: CategoryPool
    ) -> tuple[PriceChange | None, bool]:
        """Count a view at the current price; maybe re-price. Returns (change, drifted)."""
        self._market(market)
        return self._after(self.demand.on_view(self.price, t, pool), t, market, pool, "views")

    def on_cart(self, t: float, pool: CategoryPool) -> None:
        """A shopper put the product in their cart at the current price: one conversion.

        Carts, not orders, are the conversions where both exist: a cart is decided at the
        price the shopper saw, right after the view, and carts outnumber orders.
        """
        self.demand.on_cart(t, pool)

    def on_uncart(self, t: float) -> None:
        """A shopper removed the product from their cart: no order will follow that cart."""
        self.demand.on_uncart(t)

    def on_sale(
        self, price: float, quantity: int, t: float, market: Market, pool: CategoryPool
    ) -> tuple[PriceChange | None, bool]:
        self._market(market)
        residual = self.demand.on_sale(price, quantity, t, pool)
        return self._after(residual, t, market, pool, "sales")

    def due_at(self) -> float:
        """Event time of the next time-triggered decision."""
        due = self.demand.hours_due()
        last = self.last_decision if self.last_decision is not None else 0.0
        rest = last + DECIDE_EVERY_S
        return rest if due is None else min(due, rest)

    def on_time(
        self, t: float, market: Market, pool: CategoryPool
    ) -> tuple[PriceChange | None, bool]:
        """Time reached ``t`` with no event of this product: close what is due, decide."""
        self._market(market)
        residual = None
        due = self.demand.hours_due()
        if due is not None and due <= t:
            residual = self.demand.close_hours(t, pool)
        return self._after(residual, t, market, pool, "time", force=True)

    # ---------------------------------------------------------------- deciding
    def explore(self, std: float) -> float:
        """The log-price offset of the next leg of the product's price test: alternating in
        sign, shrinking as the posterior narrows.

        Prices that never move teach nothing about elasticity. The test's two legs lie up
        to half a guardrail step either side of the price the model would set (inside the
        guardrails' band, :func:`online_models.pricing.price_test`; narrower where that
        would lose more profit than the guardrails allow), so one step moves between them
        and every decision prices the other leg.
        """
        size = math.log1p(self.rails.max_change) / 2 * min(1.0, std / EXPLORE_UNTIL_STD)
        return size if self.decisions % 2 == 0 else -size

    def draw(self, t: float, mean: float, std: float) -> float:
        """The elasticity a decision at ``t`` prices, from the posterior ``mean`` ± ``std``
        with half the std: the day's deviate (drawn at its first decision) on today's
        posterior, kept within plausible bounds.

        >>> pricer = ProductPricer("SKU-1", list_price=10.0, unit_cost=5.0)
        >>> first = pricer.draw(3_600.0, -2.0, 0.4)
        >>> pricer.draw(7_200.0, -2.0, 0.4) == first  # the same day, the same posterior
        True
        >>> moved = pricer.draw(7_200.0, -2.2, 0.2)  # the posterior moved: the deviate held
        >>> round(moved - -2.2, 9) == round((first - -2.0) / 2, 9)
        True
        >>> pricer.decisions += 1  # a new day's first decision draws again
        >>> pricer.draw(86_400.0, -2.0, 0.4) == first
        False
        """
        day = int(t // DAY_S)
        if day != self.held_day:
            self.held_day = day
            self.held_deviate = self._rng().gauss(0.0, 1.0)
        return plausible_elasticity(mean + self.held_deviate * std * THOMPSON_SCALE)

    def why(self, pool: CategoryPool, posterior: tuple[float, float] | None = None) -> str:
        """The elasticity ± std (``posterior``, if already read) and the evidence it rests
        on, in words."""
        mean, std = posterior or self.demand.posterior(pool)
        ev = self.demand.evidence()
        prior_mean, prior_std = pool.prior.for_product(self.sku)
        return (
            f"elasticity {mean:.2f} ± {std:.2f} from {ev.views:,} views, {ev.units:,.0f} units, "
            f"{ev.exposure_hours:,.1f} exposure h ({ev.observations} obs; category prior "
            f"{prior_mean:.2f} ± {prior_std:.2f})"
        )

    def _after(
        self,
        residual: float | None,
        t: float,
        market: Market,
        pool: CategoryPool,
        trigger: str,
        force: bool = False,
    ) -> tuple[PriceChange | None, bool]:
        drifted = False
        if residual is not None:
            drifted = self.drift.update(residual)
        elif not force:
            return None, drifted
        self.last_decision = t
        while self._recent and self._recent[0] <= t - 3600:
            self._recent.popleft()
        if len(self._recent) >= self.rails.max_updates_per_hour:
            return None, drifted
        mean, std = self.demand.posterior(pool)
        elasticity = self.draw(t, mean, std)
        decision: PriceDecision | None = decide(
            PricingInput(
                current=self.price,
                list_price=self.list_price,
                unit_cost=self.unit_cost,
                elasticity=elasticity,
                min_competitor_price=market.min_competitor_price,
                days_of_cover=market.days_of_cover,
                explore=self.explore(std),
            ),
            self.rails,
        )
        self.decisions += 1
        why = f"{trigger}: {self.why(pool, (mean, std))}"
        if decision is None:
            self.reason = f"{why}; kept {self.price:.2f}"
            return None, drifted
        self.reason = f"{why}; {decision.reason}"
        self._recent.append(t)
        self.changes += 1
        change = PriceChange(
            sku=self.sku,
            price=decision.price,
            previous_price=self.price,
            reason=self.reason[:512],
            model_version=self.model_version,
            t=t,
            sequence=self.changes,
        )
        self.price = decision.price
        self.demand.on_price(decision.price, t, pool)
        return change, drifted
