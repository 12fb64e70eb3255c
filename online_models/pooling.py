"""Partial pooling: the elasticity prior of a product, learned from its category's products.

A hierarchical model over a category's products, ``e_i ~ Normal(μ, τ²)``, with hyperpriors
``μ ~ Normal(−1.5, 0.7²)`` (a typical retail elasticity) and ``τ ~ HalfNormal(0.7)`` (so that a
category with no evidence yet gives a product −1.5 ± 1.0). Each product reports what its own
evidence says about its elasticity, the prior divided out: the information ``λ_i`` and
``λ_i·d_i`` (``d_i`` the likelihood's estimate), so the fit never counts the prior twice.

The fit is Bayesian in ``μ`` and ``τ``: for each ``τ`` of a grid, ``μ`` is integrated in closed
form (``d_i ~ Normal(μ, τ² + 1/λ_i)``), which gives the marginal likelihood of ``τ``; the grid
weights are its posterior. The prior a product gets is that posterior's predictive for a
product of the category: its mean and variance (``τ²`` plus the uncertainty of ``μ``,
averaged over ``τ``). Products with little evidence weigh little in ``μ`` and nothing in ``τ``,
so ``τ`` does not collapse when every product knows little (which point estimates of ``τ``,
EM or marginal maximum likelihood, do), and ``μ`` follows the products as their evidence grows
(pseudo-products at the shop-wide prior would weigh as much as fully known products).

>>> prior = CategoryPrior()
>>> round(prior.mean, 2), round(prior.std, 2)
(-1.5, 0.99)
>>> for i, e in enumerate([-2.0, -2.2, -1.8, -2.1, -1.9, -2.0]):
...     prior.report(f"SKU-{i}", information=20.0, information_mean=20.0 * e)
>>> round(prior.mean, 2), round(prior.std, 2)
(-1.99, 0.21)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from online_models.demand_pattern import DemandPattern, WeekdayConversion

BASE_MEAN = -1.5  # a typical retail elasticity: the centre of every category's prior
MEAN_STD = 0.7  # how far a category's mean elasticity may lie from it, a priori
TAU_SCALE = 0.7  # half-normal scale of the spread of elasticities within a category
TAU_GRID = np.linspace(0.02, 2.5, 64)  # τ values the posterior is evaluated on
MIN_INFORMATION = 1e-6  # reports with less say nothing


def _predictive(
    information: np.ndarray, information_mean: np.ndarray, base_mean: float
) -> tuple[float, float]:
    """Mean and std of a category product's elasticity, given the products' likelihoods."""
    tau2 = TAU_GRID[:, None] ** 2
    lam, h = information[None, :], information_mean[None, :]
    w = lam / (1.0 + lam * tau2)  # 1 / (τ² + 1/λ_i)
    wd = h / (1.0 + lam * tau2)  # w_i·d_i
    wdd = h * h / (lam * (1.0 + lam * tau2))  # w_i·d_i²
    p0 = 1.0 / MEAN_STD**2
    precision = p0 + w.sum(axis=1)
    mu = (p0 * base_mean + wd.sum(axis=1)) / precision
    quad = wdd.sum(axis=1) + p0 * base_mean**2 - precision * mu * mu
    log_post = (
        0.5 * np.log(w).sum(axis=1)
        - 0.5 * np.log(precision)
        - 0.5 * quad
        - TAU_GRID**2 / (2 * TAU_SCALE**2)
    )
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    mean = float(weights @ mu)
    second = float(weights @ (TAU_GRID**2 + 1.0 / precision + mu * mu))
    return mean, math.sqrt(max(second - mean * mean, 1e-12))


@dataclass
class CategoryPrior:
    """Online hierarchical prior for the elasticities of one category's products."""

    base_mean: float = BASE_MEAN
    reports: dict[str, tuple[float, float]] = field(default_factory=dict)
    mean: float = BASE_MEAN
    std: float = field(init=False)

    def __post_init__(self) -> None:
        self._fit()

    def report(self, sku: str, information: float, information_mean: float) -> None:
        """What a product's own evidence says of its elasticity (its likelihood, the prior
        divided out: precision ``information`` and ``information × estimate``); refits."""
        if information > MIN_INFORMATION:
            self.reports[sku] = (information, information_mean)
        else:
            self.reports.pop(sku, None)
        self._fit()

    def _fit(self) -> None:
        pairs = np.array(list(self.reports.values()), dtype=float).reshape(-1, 2)
        pairs = pairs[pairs[:, 0] > MIN_INFORMATION]
        self.mean, self.std = _predictive(pairs[:, 0], pairs[:, 1], self.base_mean)


@dataclass
class CategoryPool:
    """What the products of one category learn together: the elasticity prior, the hour ×
    weekday pattern of sales, the weekday rhythm of conversion, and how many units a sale
    line carries (the dispersion of unit counts: baskets of 2 or 3 are not 2 or 3 shoppers)."""

    prior: CategoryPrior = field(default_factory=CategoryPrior)
    sales: DemandPattern = field(default_factory=DemandPattern)
    conversion: WeekdayConversion = field(default_factory=WeekdayConversion)
    line_units: float = 0.0
    line_units_squared: float = 0.0

    def add_sale_line(self, t: float, quantity: int, at_list_price: float = 1.0) -> None:
        """A sale line; ``at_list_price`` rescales it to what would have sold at the list
        price (``(price / list)^−e``), so the pattern learns when demand happens, not when
        prices were low."""
        self.sales.add_units(t, quantity * at_list_price)
        self.line_units += quantity
        self.line_units_squared += quantity * quantity

    @property
    def unit_dispersion(self) -> float:
        """Var/mean of units for Poisson-many lines of random size: E[q²] / E[q] (≥ 1).

        >>> pool = CategoryPool()
        >>> for q in (1, 1, 1, 3):
        ...     pool.add_sale_line(0.0, q)
        >>> pool.unit_dispersion
        2.0
        """
        if self.line_units <= 0:
            return 1.0
        return max(1.0, self.line_units_squared / self.line_units)
