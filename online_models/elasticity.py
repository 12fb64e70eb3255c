"""Per-product price elasticity, learned online from whatever the shop sends.

One Poisson log-linear demand model per product, with two kinds of evidence sharing one
elasticity ``e`` and one competitor coefficient ``c``:

- **views** (web shops): conversions at a price per view,
  ``conversions ~ Poisson(Σ views·w(day) · exp(a_v + e·log(p/list) + c·log(comp/list)))``,
  where ``w(day)`` is the category's weekday rhythm of conversion and a conversion is an
  add-to-cart (or a unit sold when the shop sends no carts);
- **hours** (point-of-sale shops, no views): units sold while a price held,
  ``units ~ Poisson(busy hours · exp(a_h + e·log(p/list) + c·log(comp/list)))``, where busy
  hours are clock hours weighted by the category's hour-of-day × weekday pattern of sales, so
  a price that held at night is not mistaken for a price that sells less.

A shop with web and tills gives both: carts per view, and the till's units per busy hour,
each with its own level (``a_v``, ``a_h``) and one shared elasticity. Orders carry no channel,
so a sale is told apart by the carts: each product keeps its carts that were neither bought
nor removed (for at most ``cart_hold_s``, after which a cart counts as abandoned), and a sale
line that finds such a cart is that shopper's web order, already counted as its cart; a sale
line that finds none was rung up at a till. Without carts (a web shop that sends only views and
orders) the sales are the views' conversions and there are no till hours.

Evidence accumulates in a bucket at one price; the bucket becomes one observation when it is
full, when the price changes, or (hours) when it has been open long enough, so zero-sale hours
count too.
Units sold in baskets of several are more dispersed than a Poisson count; their likelihood is
tempered by the category's E[q²]/E[q] (quasi-Poisson). Carts per view are less dispersed (a
view converts at most once: Bernoulli trials), so their likelihood is weighted up by
1/(1 − p), p the conversion per view the posterior expects (quasi-binomial). Demand also
moves from day to day for reasons no price explains (weather, events, a display), so buckets
of the same day share a **day effect** ``u_day ~ Normal(0, day_variance)`` on the log rate: a
fifth coefficient, integrated out of the evidence when the product's next day begins
(:meth:`PoissonLaplace.absorb`). Price contrasts within a day keep their full weight; levels
that differ between days count only as far as the day variance allows, so many buckets of a
few days do not claim the precision of as many independent counts. The day variance is the
category's, learned from its products' days (:meth:`CategoryPool.add_day`). The
elasticity's prior is the category's (``online_models.pooling``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from online_models.poisson_glm import PoissonLaplace
from online_models.pooling import CategoryPool

A_VIEWS, A_HOURS, ELASTICITY, COMPETITOR, DAY = range(5)
DAY_S = 86_400.0
PRICE_TOLERANCE = 0.005  # relative: prices closer than this are the same price
# The largest conversion per view the binomial weight believes (a weight of at most 2): an
# early posterior far off cannot make one bucket count many times over.
MAX_CONVERSION = 0.5


@dataclass(frozen=True)  # no slots: unpickling slotted frozen classes is slow (snapshots)
class ElasticityConfig:
    bucket_views: int = 60  # a views bucket closes once it holds this many views
    bucket_units: int = 6  # an hours bucket closes once it holds this many units
    bucket_hours: float = 2.0  # ... or once it has been open this long (event time)
    conversion_prior: float = 0.1  # prior median of conversions per view
    hourly_prior: float = 0.5  # prior median of units per busy hour
    intercept_std: float = 2.5  # wide: the level of demand is the data's to say
    competitor_std: float = 0.5  # cross-price coefficient: zero unless the data say otherwise
    cart_hold_s: float = 1800.0  # a cart neither bought nor removed this long is abandoned
    open_carts_max: int = 1_000  # open carts kept per product (the oldest go first)


# The configuration of every product not given one of its own: one object, so a category's
# snapshot pickles it once (pickle's memo), not once per product, and the products of a
# restored category share one again.
DEFAULT_CONFIG = ElasticityConfig()


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a product's elasticity rests on."""

    observations: int
    views: int
    units: float
    exposure_hours: float
    information: float  # the evidence's precision on the elasticity (its Fisher information)


def _same(a: float, b: float) -> bool:
    return abs(a - b) < PRICE_TOLERANCE * max(a, b)


@dataclass
class ElasticityModel:
    """The demand model of one product, with the buckets currently filling."""

    sku: str
    list_price: float
    config: ElasticityConfig = DEFAULT_CONFIG
    glm: PoissonLaplace = field(init=False)
    views: int = 0
    units: float = 0.0
    exposure: float = 0.0
    has_views: bool = False
    has_carts: bool = False
    competitor: float = 0.0  # log(lowest competitor / list price), 0 while unknown
    day: int = -1  # the day (UTC, event time) whose effect is open in the evidence
    _v_price: float = 0.0
    _v_views: int = 0
    _v_exposure: float = 0.0
    _v_units: float = 0.0
    _v_weight: float = 1.0
    _v_time: float = 0.0  # event time of the open views bucket's latest view
    _h_price: float = 0.0
    _h_open: float | None = None
    _h_last_sale: float | None = None
    _h_units: float = 0.0
    _h_unconfirmed: float | None = None  # the price before a publish no sale confirmed yet
    # closed hours buckets (start, end, price, units, competitor) waiting for the pattern
    _h_waiting: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    _carts: list[float] = field(default_factory=list)  # times of carts not bought nor removed

    def __post_init__(self) -> None:
        c = self.config
        self.glm = PoissonLaplace(
            [math.log(c.conversion_prior), math.log(c.hourly_prior), -1.5, 0.0, 0.0],
            [c.intercept_std, c.intercept_std, 1.0, c.competitor_std, 1.0],
        )

    # ---------------------------------------------------------------- reading
    @property
    def observations(self) -> int:
        return self.glm.n

    def posterior(self, pool: CategoryPool) -> tuple[float, float]:
        """Elasticity mean and standard deviation under the category's current prior. Reading
        it changes nothing (learning sets the prior it learns under), so prices do not depend
        on when a feature row or a price was read, nor on how the input was batched."""
        return self.posterior_under(*pool.prior.for_product(self.sku))

    def posterior_under(self, mean: float, std: float) -> tuple[float, float]:
        """Elasticity mean and standard deviation were its prior ``mean`` ± ``std`` (reading
        it changes nothing, as :meth:`posterior`)."""
        return self.glm.marginal_under(ELASTICITY, mean, std)

    def sample(self, pool: CategoryPool, rng: random.Random) -> float:
        mean, std = self.posterior(pool)
        return rng.gauss(mean, std)

    def evidence(self) -> Evidence:
        return Evidence(
            self.glm.n,
            self.views,
            round(self.units, 3),
            round(self.exposure, 3),
            round(self.glm.information(ELASTICITY), 3),
        )

    # ---------------------------------------------------------------- learning
    def _learn(
        self,
        pool: CategoryPool,
        intercept: int,
        price: float,
        units: float,
        exposure: float,
        weight: float,
        t: float,
        competitor: float | None = None,
        trials: int = 0,
    ) -> float:
        """One observation; ``trials`` > 0: ``units`` are conversions of that many views,
        each of which converts at most once."""
        competitor = self.competitor if competitor is None else competitor
        x = [0.0, 0.0, math.log(price / self.list_price), competitor, 1.0]
        x[intercept] = 1.0
        day = int(t // DAY_S)
        if day != self.day:
            # yesterday's effect, integrated out; read against the product's own evidence of
            # its level, so its first day, whose level nothing else tells, reads nothing
            prior = self.glm.prior_variance(DAY)
            closed = self.glm.absorb(DAY, vague=(A_VIEWS, A_HOURS), odd=self.day % 2 == 1)
            pool.add_day(*closed, prior)
            self.day = day
        self.glm.set_prior(DAY, 0.0, math.sqrt(pool.day_variance))
        self.glm.set_prior(ELASTICITY, *pool.prior.for_product(self.sku))
        if trials:
            # A view converts at most once, so conversions of n views are Bernoulli trials:
            # their count varies by μ(1 − p) around its mean μ, less than the Poisson μ, and
            # a Poisson likelihood would claim a (1 − p) share of what they tell. Weighted by
            # 1/(1 − p) (quasi-likelihood, binomial variance), with p the conversion per view
            # the posterior expected before this bucket: the bucket's own rate would weigh
            # buckets by their outcome.
            expected = exposure * self.glm.rate(x) / trials
            weight /= 1.0 - min(expected, MAX_CONVERSION)
        residual = self.glm.learn_one(x, units, exposure, weight, odd=day % 2 == 1)
        pool.report(
            self.sku,
            *self.glm.likelihood(ELASTICITY),
            halves=self.glm.half_likelihood(ELASTICITY),
        )
        self.units += units
        return residual

    def start(self, price: float, t: float) -> None:
        """Begin counting time at ``price``: hours without a sale are evidence too."""
        if self._h_open is None and not self.has_views:
            self._h_open, self._h_price = t, price

    def on_view(self, price: float, t: float, pool: CategoryPool) -> float | None:
        """A view at the published ``price``; returns the residual of a bucket it closed."""
        closed = None
        if not self.has_views:
            self.has_views = True
            self._h_open = None  # views are the evidence from now on
        full = self._v_views >= self.config.bucket_views
        if self._v_views and (full or not _same(price, self._v_price)):
            closed = self.close_views(pool)
        if not self._v_views:
            self._v_price = price
        self._v_views += 1
        self._v_exposure += pool.conversion.factor(t)
        self._v_time = t
        self.views += 1
        return closed

    def close_views(self, pool: CategoryPool) -> float | None:
        if not self._v_views:
            return None
        residual = self._learn(
            pool,
            A_VIEWS,
            self._v_price,
            self._v_units,
            self._v_exposure,
            self._v_weight,
            self._v_time,
            trials=self._v_views if self.has_carts else 0,  # sales are not bounded by views
        )
        self._v_views, self._v_exposure, self._v_units = 0, 0.0, 0.0
        return residual

    def on_cart(self, t: float, pool: CategoryPool) -> None:
        pool.conversion.add(t, 0.0, 1.0)
        if not self.has_carts:
            self.has_carts = True
            self._v_units, self._v_weight = 0.0, 1.0  # carts replace sales as conversions
        if self._v_views:
            self._v_units += 1.0
        carts = self._open_carts(t)
        carts.append(t)
        if len(carts) > self.config.open_carts_max:  # a flood of carts keeps the state bounded
            del carts[: len(carts) - self.config.open_carts_max]

    def on_uncart(self, t: float) -> None:
        """A shopper took the product out of their cart: that cart will not be an order."""
        carts = self._open_carts(t)
        if carts:
            carts.pop(0)

    def _open_carts(self, t: float) -> list[float]:
        """The carts still waiting for their order at ``t`` (abandoned ones dropped)."""
        carts, hold = self._carts, self.config.cart_hold_s
        while carts and carts[0] < t - hold:
            carts.pop(0)
        return carts

    def _web_order(self, t: float) -> bool:
        """Whether a sale line at ``t`` is a web order: it takes the oldest open cart."""
        carts = self._open_carts(t)
        if not carts:
            return False
        carts.pop(0)
        return True

    def on_sale(self, price: float, quantity: int, t: float, pool: CategoryPool) -> float | None:
        """Units sold at ``price``; returns the residual of a bucket this sale closed."""
        if self.has_carts and self._web_order(t):
            return None  # counted as its cart
        mean, _ = self.glm.marginal(ELASTICITY)
        pool.add_sale_line(t, quantity, (price / self.list_price) ** -mean)
        if self.has_views and not self.has_carts:
            if self._v_views and _same(price, self._v_price):
                self._v_units += quantity
                self._v_weight = 1.0 / pool.unit_dispersion
            return None
        if self.has_views and self._h_open is None:
            # The first till sale of a product with views: the tills' clock starts now. The
            # sale that started it is not counted, or every clock would open on a sale.
            self._h_open, self._h_price, self._h_last_sale = t, price, t
            return None
        closed = None
        unconfirmed, self._h_unconfirmed = self._h_unconfirmed, None
        if self._h_open is None:
            self._h_open, self._h_price = t, price
        elif not _same(price, self._h_price):
            if unconfirmed is not None and _same(price, unconfirmed):
                # Our last published price was not applied: the time since it was still at
                # the price the tills show.
                self._h_price = price
            else:
                # The tills show a price we did not set: it changed between two sales.
                since = max(self._h_open, self._h_last_sale or self._h_open)
                # never before the bucket opened: a sale that arrives late must not make
                # time already counted count again
                switch = max((since + t) / 2, self._h_open)
                closed = self.close_hours(switch, pool)
                self._h_open, self._h_price = switch, price
        self._h_units += quantity
        self._h_last_sale = t
        if self._h_units >= self.config.bucket_units:
            closed = self.close_hours(t, pool)
        return closed

    def hours_due(self) -> float | None:
        """When the open hours bucket closes for time, if one is open."""
        if self._h_open is None:
            return None
        return self._h_open + self.config.bucket_hours * 3600.0

    def close_hours(self, t: float, pool: CategoryPool) -> float | None:
        """Close the hours bucket at ``t`` (zero sales count too); it reopens at ``t``."""
        if self._h_open is None or t <= self._h_open:
            return None
        self._h_waiting.append((self._h_open, t, self._h_price, self._h_units, self.competitor))
        self._h_open, self._h_units = t, 0.0
        if not pool.sales.warm:
            return None  # until the category's hour pattern is known, exposure is not
        residual = None
        waiting, self._h_waiting = self._h_waiting, []
        for start, end, price, units, competitor in waiting:
            exposure = pool.sales.exposure_hours(start, end)
            if exposure <= 0.0:
                continue
            self.exposure += exposure
            weight = 1.0 / pool.unit_dispersion
            residual = self._learn(pool, A_HOURS, price, units, exposure, weight, end, competitor)
        return residual

    def on_price(self, price: float, t: float, pool: CategoryPool) -> None:
        """A new published price from ``t``: the evidence at the old price is closed.

        The new price is taken to hold from ``t`` until a sale says otherwise (a shop whose
        tills keep their own prices shows the old price at the next sale).
        """
        if self.has_views:
            self.close_views(pool)
        if self._h_open is not None:
            self.close_hours(t, pool)
            self._h_unconfirmed = self._h_price
            self._h_price = price
