"""Online/offline skew: stream features recomputed from the lake, compared with the served ones.

The flows keep each product's windowed sums in buckets (``flows.windows.SlidingSums``): at a
watermark ``w`` a window of ``buckets`` buckets of ``bucket_s`` seconds holds the events whose
bucket ``⌊t / bucket_s⌋`` lies in ``(⌊w / bucket_s⌋ − buckets, ⌊w / bucket_s⌋]`` and ``t ≤ w``.
The online store serves the value with its ``event_time`` (the watermark it was computed at),
so :func:`recompute` rebuilds the same value point-in-time from the lake's events, and
:func:`compare` counts per feature the entities whose two values differ beyond a tolerance.

>>> events = pd.DataFrame({"sku": ["a", "a", "a"], "t": [0.0, 3500.0, 7300.0],
...                        "kind": ["view", "view", "sale"], "quantity": [0, 0, 2],
...                        "price": [0.0, 0.0, 5.0]})
>>> values = recompute(events, {"a": 7300.0})
>>> values.set_index("feature").loc[["views_1h", "views_24h", "units_1h", "revenue_24h"],
...                                  "value"].tolist()
[0.0, 2.0, 2.0, 10.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from schemas.features import WINDOWS

MEASURES = ("views", "add_to_carts", "units", "revenue", "conversion")
"""The windowed stream features the skew job checks (each over every window)."""
FEATURES: tuple[str, ...] = tuple(f"{m}_{w.name}" for m in MEASURES for w in WINDOWS)
WATERMARK_RESOLUTION_S = 0.001
"""The served ``event_time`` has milliseconds: events up to a millisecond after it count."""


@dataclass(frozen=True)
class FeatureSkew:
    feature: str
    compared: int
    mismatches: int
    max_abs_diff: float

    @property
    def mismatch_rate(self) -> float:
        return self.mismatches / self.compared if self.compared else 0.0


def recompute(events: pd.DataFrame, as_of: Mapping[str, float]) -> pd.DataFrame:
    """Each sku's windowed features at its watermark ``as_of[sku]`` (unix seconds).

    ``events``: one row per deduplicated event with ``sku``, ``t`` (unix seconds), ``kind``
    (``view``, ``add_to_cart`` or ``sale``), ``quantity`` and ``price`` (sales).
    Returns ``sku``, ``feature``, ``value`` rows.
    """
    rows: list[tuple[str, str, float]] = []
    grouped = {sku: frame for sku, frame in events.groupby("sku")} if len(events) else {}
    for sku, watermark in as_of.items():
        frame = grouped.get(sku, events.iloc[0:0])
        t = frame["t"].to_numpy(dtype=np.float64)
        kind = frame["kind"].to_numpy()
        quantity = frame["quantity"].to_numpy(dtype=np.float64)
        price = frame["price"].to_numpy(dtype=np.float64)
        for w in WINDOWS:
            head = math.floor(watermark / w.bucket_s)
            seen = t < watermark + WATERMARK_RESOLUTION_S
            inside = seen & (np.floor(t / w.bucket_s) > head - w.buckets)
            views = float(np.sum(inside & (kind == "view")))
            sales = inside & (kind == "sale")
            units = float(np.sum(quantity[sales]))
            values = {
                "views": views,
                "add_to_carts": float(np.sum(inside & (kind == "add_to_cart"))),
                "units": units,
                "revenue": round(float(np.sum(quantity[sales] * price[sales])), 2),
                "conversion": round(units / views, 6) if views else 0.0,
            }
            rows.extend((sku, f"{m}_{w.name}", values[m]) for m in MEASURES)
    return pd.DataFrame(rows, columns=["sku", "feature", "value"])


def compare(
    online: pd.DataFrame, offline: pd.DataFrame, rel_tolerance: float, abs_tolerance: float = 0.01
) -> list[FeatureSkew]:
    """Per feature: entities with both values, and those whose values differ.

    Two values agree when they are within ``abs_tolerance`` (revenue is rounded to cents) or
    ``rel_tolerance`` of the larger one.

    >>> on = pd.DataFrame({"sku": ["a", "b"], "feature": ["units_1h"] * 2, "value": [2.0, 3.0]})
    >>> off = pd.DataFrame({"sku": ["a", "b"], "feature": ["units_1h"] * 2, "value": [2.0, 4.0]})
    >>> (s,) = compare(on, off, 1e-6)
    >>> s.compared, s.mismatches, s.mismatch_rate, s.max_abs_diff
    (2, 1, 0.5, 1.0)
    """
    both = online.merge(offline, on=["sku", "feature"], suffixes=("_online", "_offline"))
    both = both.dropna(subset=["value_online", "value_offline"])
    diff = (both["value_online"] - both["value_offline"]).abs()
    scale = np.maximum(both["value_online"].abs(), both["value_offline"].abs())
    both = both.assign(diff=diff, bad=(diff > abs_tolerance) & (diff > rel_tolerance * scale))
    out = []
    for feature, group in both.groupby("feature", sort=True):
        out.append(
            FeatureSkew(
                str(feature),
                len(group),
                int(group["bad"].sum()),
                float(group["diff"].max()) if len(group) else 0.0,
            )
        )
    return out
