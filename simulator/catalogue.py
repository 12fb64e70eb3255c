"""Products with list prices, unit costs and a true demand curve each."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.config import ShopConfig

CATEGORY_NAMES = (
    "produce",
    "bakery",
    "dairy",
    "meat",
    "seafood",
    "frozen",
    "pantry",
    "snacks",
    "beverages",
    "coffee",
    "wine",
    "household",
    "cleaning",
    "personal-care",
    "baby",
    "pets",
    "garden",
    "kitchen",
    "electronics",
    "toys",
    "books",
    "sports",
    "stationery",
    "health",
)


@dataclass(frozen=True, slots=True)
class Product:
    """One product and the truth about its demand."""

    index: int
    sku: str
    category: int
    list_price: float
    unit_cost: float
    elasticity: float
    conversion: float
    seasonality: tuple[float, ...]  # multiplier per ISO weekday, Monday first; mean 1

    def demand_multiplier(self, price: float, weekday: int) -> float:
        """Demand at ``price`` on ``weekday`` relative to demand at the list price on average.

        >>> p = Product(0, "SKU-1", 0, 10.0, 6.0, -2.0, 0.1, (1.0,) * 7)
        >>> round(p.demand_multiplier(5.0, 0), 6)
        4.0
        """
        return float((price / self.list_price) ** self.elasticity * self.seasonality[weekday])


def category_name(index: int) -> str:
    """A readable category name (``produce``, ``bakery``, … then ``category-24`` …)."""
    return CATEGORY_NAMES[index] if index < len(CATEGORY_NAMES) else f"category-{index}"


def sku_of(index: int) -> str:
    """The sku of product ``index``: ``SKU-00001`` for index 0."""
    return f"SKU-{index + 1:05d}"


def make_catalogue(config: ShopConfig, rng: np.random.Generator) -> list[Product]:
    """Draw the catalogue: categories, prices, costs, elasticities and weekly seasonality."""
    n, k = config.products, config.categories
    categories = np.sort(rng.integers(0, k, size=n))
    categories[: min(n, k)] = np.arange(min(n, k))  # every category has a product
    categories = np.sort(categories)
    category_price = rng.lognormal(mean=math.log(8.0), sigma=0.8, size=k)
    list_prices = np.round(category_price[categories] * rng.lognormal(0.0, 0.35, size=n), 2)
    list_prices = np.maximum(list_prices, 0.5)
    margins = rng.uniform(0.25, 0.6, size=n)
    costs = np.round(list_prices * (1 - margins), 2)
    lo, hi = config.elasticity_range
    elasticities = rng.uniform(lo, hi, size=n)
    clo, chi = config.conversion_range
    conversions = rng.uniform(clo, chi, size=n)
    alo, ahi = config.seasonality_amplitude
    amplitude = rng.uniform(alo, ahi, size=k)
    phase = rng.uniform(0, 7, size=k)
    days = np.arange(7)
    season = 1 + amplitude[:, None] * np.cos(2 * np.pi * (days[None, :] - phase[:, None]) / 7)
    season /= season.mean(axis=1, keepdims=True)
    return [
        Product(
            index=i,
            sku=sku_of(i),
            category=int(categories[i]),
            list_price=float(list_prices[i]),
            unit_cost=float(costs[i]),
            elasticity=float(elasticities[i]),
            conversion=float(conversions[i]),
            seasonality=tuple(float(x) for x in season[categories[i]]),
        )
        for i in range(n)
    ]
