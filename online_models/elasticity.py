"""Per-product price elasticity, learned online from what shoppers do at each price.

Demand is modelled log-log: while a price holds, views and conversions (add-to-carts; the
``units`` of a bucket) are accumulated in a bucket; a bucket closes when the price changes or
when it holds enough views, and becomes one observation
``log((units + ½) / views) = a + e·log(price / list price) + weekday terms``.
Views do not depend on the price in this model, so ``e`` is the elasticity of demand.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from online_models.bayes_linear import BayesLinear

WEEKDAYS = [f"dow_{d}" for d in range(1, 7)]  # Monday is the baseline


@dataclass(frozen=True)  # no slots: unpickling slotted frozen classes is slow (snapshots)
class ElasticityConfig:
    bucket_views: int = 60  # a bucket closes once it holds this many views
    prior_elasticity: float = -1.5
    prior_precision: float = 1.0  # River's alpha; keep 1 (see shared/DESIGN.md)
    noise_precision: float = 1.0  # River's beta, per unit sold (observations weigh their units)


@dataclass(frozen=True, slots=True)
class Observation:
    """One closed bucket: what was seen at one price."""

    price: float
    views: int
    units: int
    weekday: int
    end_time: float

    def features(self, list_price: float) -> dict[str, float]:
        x = {"log_price": math.log(self.price / list_price)}
        if self.weekday > 0:
            x[WEEKDAYS[self.weekday - 1]] = 1.0
        return x

    def target(self) -> float:
        return math.log((self.units + 0.5) / self.views)

    def weight(self) -> float:
        """Relative precision of the target: a log count's variance is about 1 / count."""
        return self.units + 0.5


@dataclass
class ElasticityModel:
    """The demand model of one product, with the bucket currently filling."""

    list_price: float
    config: ElasticityConfig = field(default_factory=ElasticityConfig)
    model: BayesLinear = field(init=False)
    _price: float | None = None
    _views: int = 0
    _units: int = 0
    _weekday: int = 0

    def __post_init__(self) -> None:
        c = self.config
        self.model = BayesLinear(
            ["log_price", *WEEKDAYS],
            alpha=c.prior_precision,
            beta=c.noise_precision,
            prior_mean={"log_price": c.prior_elasticity},
        )

    @property
    def observations(self) -> int:
        return self.model.n

    def on_view(self, price: float, t: float) -> tuple[Observation, float] | None:
        """A view at the published ``price``; returns the bucket this view closed, if any.

        A bucket closes once it holds ``bucket_views`` views, or when the price or the weekday
        changes (a bucket with fewer views is then dropped: too noisy to learn from).
        """
        weekday = datetime.fromtimestamp(t, UTC).weekday()
        changed = (
            self._price is None or abs(price - self._price) >= 0.005 or weekday != self._weekday
        )
        full = self._views >= self.config.bucket_views
        closed = None
        if full and self._price is not None:
            obs = Observation(self._price, self._views, self._units, self._weekday, t)
            x = obs.features(self.list_price)
            error = obs.target() - self.model.predict_one(x)
            self.model.learn_one(x, obs.target(), obs.weight())
            closed = (obs, error)
        if changed or full:
            self._price, self._views, self._units, self._weekday = price, 0, 0, weekday
        self._views += 1
        return closed

    def on_units(self, price: float, units: int) -> None:
        """Units sold at ``price``: counted in the open bucket if it is at that price."""
        if self._price is not None and abs(price - self._price) < 0.005:
            self._units += units

    @property
    def elasticity(self) -> float:
        return self.model.coef_mean("log_price")

    @property
    def elasticity_std(self) -> float:
        return self.model.coef_std("log_price")

    def sample_elasticity(self, rng: random.Random) -> float:
        return self.model.sample_coef("log_price", rng)
