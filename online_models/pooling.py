"""Partial pooling: the elasticity prior of a product, learned from its category's products.

A hierarchical model ``e_i ~ Normal(μ, τ²)`` over a category's products, fitted online by
empirical Bayes: each product reports the posterior mean and variance of its elasticity, and
the category's ``μ`` and ``τ²`` are their EM fixed point
``μ = mean(m_i)``, ``τ² = mean(s_i² + (m_i − μ)²)``, anchored by a few pseudo-products at the
shop-wide prior so that a category of two products does not collapse ``τ`` to zero. A product
with little evidence then sits near ``μ`` with the category's spread as its uncertainty; with
more evidence its own data dominate, whatever the category says.

>>> prior = CategoryPrior()
>>> prior.mean, prior.std
(-1.5, 1.0)
>>> for i, e in enumerate([-2.0, -2.2, -1.8, -2.1, -1.9, -2.0]):
...     prior.report(f"SKU-{i}", e, 0.05)
>>> round(prior.mean, 2), round(prior.std, 2)
(-1.88, 0.59)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from online_models.demand_pattern import DemandPattern, WeekdayConversion

BASE_MEAN = -1.5  # a typical retail elasticity: the prior of a category with no evidence yet
BASE_STD = 1.0
PSEUDO_PRODUCTS = 2.0
MIN_STD = 0.15  # τ is never taken below this: categories are not that uniform


@dataclass
class CategoryPrior:
    """Online empirical-Bayes prior for the elasticities of one category's products."""

    base_mean: float = BASE_MEAN
    base_std: float = BASE_STD
    reports: dict[str, tuple[float, float]] = field(default_factory=dict)
    mean: float = BASE_MEAN
    std: float = BASE_STD

    def report(self, sku: str, mean: float, variance: float) -> None:
        """A product's current elasticity posterior (mean, variance); refits the prior."""
        self.reports[sku] = (mean, variance)
        self._fit()

    def _fit(self) -> None:
        k = PSEUDO_PRODUCTS
        n = len(self.reports)
        mu = (k * self.base_mean + sum(m for m, _ in self.reports.values())) / (k + n)
        spread = sum(v + (m - mu) ** 2 for m, v in self.reports.values())
        base = k * (self.base_std**2 + (self.base_mean - mu) ** 2)
        tau2 = (base + spread) / (k + n)
        self.mean, self.std = mu, max(MIN_STD, math.sqrt(tau2))


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
