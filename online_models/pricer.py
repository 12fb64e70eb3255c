"""The dynamic price of one product: its demand model, its guardrails and its history."""

from __future__ import annotations

import random
import zlib
from collections import deque
from dataclasses import dataclass, field

from online_models.drift import ErrorDrift
from online_models.elasticity import ElasticityConfig, ElasticityModel
from online_models.pricing import Guardrails, PriceDecision, PricingInput, decide
from online_models.pricing import thompson_elasticity as draw

MODEL_NAME = "elasticity-blr"
EXPLORE = 0.05  # largest exploration offset of the log price
EXPLORE_UNTIL_STD = 0.25  # full exploration while the elasticity's std is at least this


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


@dataclass
class ProductPricer:
    """Learns one product's elasticity from views and sales, and re-prices it.

    Everything here is plain state (picklable), so Bytewax snapshots it for recovery.
    """

    sku: str
    list_price: float
    unit_cost: float
    rails: Guardrails = field(default_factory=Guardrails)
    config: ElasticityConfig = field(default_factory=ElasticityConfig)
    price: float = 0.0
    demand: ElasticityModel = field(init=False)
    drift: ErrorDrift = field(default_factory=ErrorDrift)
    changes: int = 0
    decisions: int = 0
    _recent: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.price = self.price or self.list_price
        self.demand = ElasticityModel(self.list_price, self.config)

    def _rng(self) -> random.Random:
        """The random stream of the next decision: a function of the product and decision
        count, so a replay draws the same, and no generator state is snapshotted."""
        return random.Random(zlib.crc32(f"{self.sku}:{self.decisions}".encode()))

    @property
    def model_version(self) -> str:
        return f"{MODEL_NAME}@{self.demand.observations}"

    def on_cart(self) -> None:
        """A shopper put the product in their cart at the current price: one conversion.

        Carts, not sales, feed the demand model: a cart is decided at the price the shopper
        saw, right after the view, and carts are about twice as many as orders.
        """
        self.demand.on_units(self.price, 1)

    def explore(self) -> float:
        """A deliberate log-price offset, alternating in sign, shrinking as the model learns.

        Prices that never move teach nothing about elasticity; this keeps them moving a
        little around the target while the posterior is wide (the guardrails still apply).
        """
        size = EXPLORE * min(1.0, self.demand.elasticity_std / EXPLORE_UNTIL_STD)
        return size if self.decisions % 2 == 0 else -size

    def on_view(
        self, t: float, min_competitor_price: float | None, days_of_cover: float | None
    ) -> tuple[PriceChange | None, bool]:
        """Count a view at the current price; maybe re-price. Returns (change, drifted)."""
        closed = self.demand.on_view(self.price, t)
        if closed is None:
            return None, False
        _, error = closed
        drifted = self.drift.update(error)
        while self._recent and self._recent[0] <= t - 3600:
            self._recent.popleft()
        if len(self._recent) >= self.rails.max_updates_per_hour:
            return None, drifted
        elasticity = draw(self.demand.elasticity, self.demand.elasticity_std, self._rng())
        decision: PriceDecision | None = decide(
            PricingInput(
                current=self.price,
                list_price=self.list_price,
                unit_cost=self.unit_cost,
                elasticity=elasticity,
                min_competitor_price=min_competitor_price,
                days_of_cover=days_of_cover,
                explore=self.explore(),
            ),
            self.rails,
        )
        self.decisions += 1
        if decision is None:
            return None, drifted
        self._recent.append(t)
        self.changes += 1
        change = PriceChange(
            sku=self.sku,
            price=decision.price,
            previous_price=self.price,
            reason=decision.reason,
            model_version=self.model_version,
            t=t,
            sequence=self.changes,
        )
        self.price = decision.price
        return change, drifted
