"""Every feature tillflow computes, defined once: name, entity, type and meaning.

The streaming flows compute them (flows/features.py) and write them under the Redis key
layout of schemas/keys.py; batch jobs and models read them by these names.

>>> [f.name for f in SKU_FEATURES][:3]
['views_5m', 'views_1h', 'views_24h']
>>> len(SKU_FEATURES)
26
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding event-time window kept as ``buckets`` buckets of ``bucket_s`` seconds."""

    name: str
    bucket_s: int
    buckets: int

    @property
    def span_s(self) -> int:
        return self.bucket_s * self.buckets


WINDOWS: tuple[Window, ...] = (
    Window("5m", 10, 30),
    Window("1h", 60, 60),
    Window("24h", 900, 96),
)

WINDOWED = ("views", "add_to_carts", "units", "revenue", "conversion")


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    entity: Literal["sku", "user"]
    dtype: Literal["int", "float", "string", "json"]
    description: str


def _windowed() -> list[Feature]:
    meaning = {
        "views": ("int", "product views"),
        "add_to_carts": ("int", "add-to-cart actions"),
        "units": ("int", "units sold"),
        "revenue": ("float", "revenue (units × unit price)"),
        "conversion": ("float", "units sold per view (0 without views)"),
    }
    out = []
    for measure in WINDOWED:
        dtype, text = meaning[measure]
        for w in WINDOWS:
            out.append(Feature(f"{measure}_{w.name}", "sku", dtype, f"{text} over {w.name}"))  # type: ignore[arg-type]
    return out


SKU_FEATURES: tuple[Feature, ...] = (
    *_windowed(),
    Feature("last_price", "sku", "float", "unit price of the latest order line"),
    Feature("min_competitor_price", "sku", "float", "lowest latest competitor price (0: none)"),
    Feature("competitor_gap", "sku", "float", "(published price − lowest competitor) / lowest"),
    Feature("on_hand", "sku", "int", "units on hand over all stores"),
    Feature("days_of_cover", "sku", "float", "on_hand / units sold in 24 h (capped at 999)"),
    Feature("late_events", "sku", "int", "events older than the key's watermark − 5 min"),
    Feature("event_time", "sku", "string", "event time of the latest update (ISO-8601, UTC)"),
    Feature("published_price", "sku", "float", "the price tillflow currently publishes"),
    Feature("elasticity", "sku", "float", "posterior mean of the price elasticity"),
    Feature("elasticity_std", "sku", "float", "posterior standard deviation of the elasticity"),
    Feature("observations", "sku", "int", "price/demand buckets the elasticity learned from"),
)

USER_FEATURES: tuple[Feature, ...] = (
    Feature("recent_views", "user", "json", "latest viewed skus, newest first (at most 20)"),
    Feature("recent_purchases", "user", "json", "latest purchased skus, newest first (at most 20)"),
    Feature("category_affinity", "user", "json", "decayed share of interactions per category"),
    Feature("session_id", "user", "string", "current session"),
    Feature("session_events", "user", "int", "events in the current session"),
    Feature("session_seconds", "user", "float", "length of the current session so far"),
    Feature("event_time", "user", "string", "event time of the latest update (ISO-8601, UTC)"),
)

# --- Batch features: computed daily from gold ``sku_daily`` by ``tillflow batch features``,
# managed by Feast (offline parquet source, materialised to Feast's online store). They are
# Feast's alone: none of these names is written to the plain Redis hashes above.
# A row's timestamp is the end of its day, so a point-in-time join as of a day's start
# sees the day before.

BATCH_SKU_FEATURES: tuple[Feature, ...] = (
    Feature("units_1d", "sku", "int", "units sold on the day"),
    Feature("views_1d", "sku", "int", "product views on the day"),
    Feature("stock_1d", "sku", "int", "units on hand over all stores at the end of the day"),
    Feature("last_paid_price", "sku", "float", "latest average unit price paid (0: none yet)"),
    Feature("competitor_min_1d", "sku", "float", "lowest competitor price known (0: none)"),
    Feature("units_per_day_7d", "sku", "float", "mean units sold per day over 7 days"),
    Feature("views_per_day_7d", "sku", "float", "mean views per day over 7 days"),
    Feature("units_per_day_28d", "sku", "float", "mean units sold per day over 28 days"),
)
