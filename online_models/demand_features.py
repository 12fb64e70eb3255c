"""The demand model's input row, built the same way for training and for serving (pure).

Serving passes the product's feature hash as the flows write it (``keys.sku_features(sku)``,
names from ``schemas.features.SKU_FEATURES``, values as strings), optionally merged with the
product's Feast batch features (``schemas.features.BATCH_SKU_FEATURES``: 7- and 28-day
averages). Training rebuilds that hash for each (sku, day) from the point-in-time batch
features of the day before (:func:`sku_state_from_batch`) and calls the same function.
Missing or unreadable values count as 0; missing batch averages fall back to the 24 h values.

>>> state = {"units_24h": "6", "views_24h": "40", "last_price": "10.0",
...          "min_competitor_price": "9.5", "on_hand": "120"}
>>> row = demand_features(state, 9.0, datetime(2026, 1, 7, 12, tzinfo=UTC))
>>> dict(zip(DEMAND_FEATURES, row))["weekday"], dict(zip(DEMAND_FEATURES, row))["units_per_day_7d"]
(2.0, 6.0)
>>> round(dict(zip(DEMAND_FEATURES, row))["competitor_gap"], 4)
-0.0526
>>> len(row) == len(DEMAND_FEATURES)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

from online_models.hash_values import hash_number

DEMAND_FEATURES: tuple[str, ...] = (
    "price",
    "log_price_ratio",  # ln(price / latest price paid); 0 without one
    "competitor_gap",  # (price − lowest competitor) / lowest; 0 without competitor
    "has_competitor",
    "units_24h",
    "views_24h",
    "conversion_24h",
    "on_hand",
    "units_per_day_7d",
    "views_per_day_7d",
    "units_per_day_28d",
    "weekday",  # 0 = Monday, of the day predicted
)
"""Ordered ONNX input columns of the demand model (``metadata["features"]``)."""

ONLINE_INPUTS: tuple[str, ...] = (
    "units_24h",
    "views_24h",
    "last_price",
    "min_competitor_price",
    "conversion_24h",
    "on_hand",
)
"""The flows' product features :func:`demand_features` reads (``SKU_FEATURES``)."""
BATCH_INPUTS: tuple[str, ...] = ("units_per_day_7d", "views_per_day_7d", "units_per_day_28d")
"""The batch averages it reads (``BATCH_SKU_FEATURES``), when the product has them."""


def demand_features(sku_features: Mapping[str, str], price: float, when: datetime) -> list[float]:
    """One row of :data:`DEMAND_FEATURES`: expected units on the day of ``when`` at ``price``."""
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware")
    units = hash_number(sku_features, "units_24h")
    views = hash_number(sku_features, "views_24h")
    last_price = hash_number(sku_features, "last_price")
    competitor = hash_number(sku_features, "min_competitor_price")
    ratio = math.log(price / last_price) if price > 0 and last_price > 0 else 0.0
    gap = (price - competitor) / competitor if competitor > 0 else 0.0
    views_7d = hash_number(sku_features, "views_per_day_7d", views)
    units_7d = hash_number(sku_features, "units_per_day_7d", units)
    return [
        float(price),
        ratio,
        gap,
        1.0 if competitor > 0 else 0.0,
        units,
        views,
        hash_number(sku_features, "conversion_24h", units / views if views else 0.0),
        hash_number(sku_features, "on_hand"),
        units_7d,
        views_7d,
        hash_number(sku_features, "units_per_day_28d", units_7d),
        float(when.astimezone(UTC).weekday()),
    ]


def sku_state_from_batch(batch: Mapping[str, float | int | None]) -> dict[str, str]:
    """The flows' hash form of one product's batch features (``BATCH_SKU_FEATURES``).

    The day before stands in for the last 24 hours, so training rows look like serving rows.

    >>> s = sku_state_from_batch({"units_1d": 3, "views_1d": 30, "stock_1d": 50,
    ...     "last_paid_price": 4.5, "competitor_min_1d": 0.0, "units_per_day_7d": 2.5})
    >>> s["units_24h"], s["conversion_24h"], s["units_per_day_7d"], "views_per_day_7d" in s
    ('3.0', '0.1', '2.5', False)
    """

    def value(name: str) -> float | None:
        raw = batch.get(name)
        if raw is None:
            return None
        number = float(raw)
        return number if math.isfinite(number) else None

    units, views = value("units_1d") or 0.0, value("views_1d") or 0.0
    state = {
        "units_24h": units,
        "views_24h": views,
        "conversion_24h": units / views if views else 0.0,
        "on_hand": value("stock_1d") or 0.0,
        "last_price": value("last_paid_price") or 0.0,
        "min_competitor_price": value("competitor_min_1d") or 0.0,
    }
    for name in ("units_per_day_7d", "views_per_day_7d", "units_per_day_28d"):
        number = value(name)
        if number is not None:
            state[name] = number
    return {k: repr(round(v, 6)) for k, v in state.items()}
