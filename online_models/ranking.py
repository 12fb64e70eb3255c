"""The recommendation ranker's input row for one (shopper, candidate item) pair (pure).

Serving builds it from the features the flows write, as text by name (api/features.py): the
shopper's (``schemas.features.USER_FEATURES``, Feast view ``user_features``; ``recent_views``,
``recent_purchases`` and ``category_affinity`` are JSON) and the item's (``SKU_FEATURES``),
plus the candidate's score, rank and source (``again``, ``similar``, ``category``,
``popular``: the ranker blends the sources) from the candidate list, what each discover source
says of it (``online_models.candidate_signals``) and the item's catalogue category.
Training rebuilds the same values as of a cut-off time from the lake (batch/ranker_data.py)
and calls the same function, so both agree.
Missing or unreadable values count as 0.

>>> user = {"recent_views": '["b", "a"]', "recent_purchases": '["c"]',
...         "category_affinity": '{"dairy": 0.75, "bakery": 0.25}'}
>>> item = {"views_24h": "99", "units_24h": "9", "on_hand": "3", "last_price": "2.5"}
>>> row = dict(zip(RANKER_FEATURES, ranker_features(user, item, 4.0, 0, "dairy", sku="a")))
>>> row["category_affinity"], row["viewed_position"], row["purchased_position"], row["in_stock"]
(0.75, 0.5, 0.0, 1.0)
>>> row = dict(zip(RANKER_FEATURES, ranker_features(user, item, 1.0, 2, None, "x", "category")))
>>> [name for name in RANKER_FEATURES if name.startswith("from_") and row[name]]
['from_category']
>>> dict(zip(RANKER_FEATURES, ranker_features(user, item, 1.0, 3, None)))["viewed_position"]
0.0
>>> round(dict(zip(RANKER_FEATURES, ranker_features(user, {}, 1.0, 3, "x")))["item_views"], 3)
0.0
>>> ranker_features(user, item, 1.0, 1, "dairy") == ranker_features(user, item, 1.0, 1, "dairy")
True
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from online_models.candidate_signals import NO_SIGNALS, SIGNAL_FEATURES, Signals
from online_models.hash_values import hash_number
from schemas.serving import CANDIDATE_SOURCES, CandidateSource

RANKER_FEATURES: tuple[str, ...] = (
    "candidate_score",
    "candidate_rank",  # 0 = first in the candidate list
    "item_views",  # ln(1 + views in 24 h)
    "item_units",  # ln(1 + units sold in 24 h)
    "item_add_to_carts",  # ln(1 + add-to-carts in 24 h)
    "item_conversion",
    "item_log_price",
    "item_competitor_gap",
    "in_stock",
    "user_recent_views",  # how many recent views the shopper has (≤ 20)
    "user_recent_purchases",
    "category_affinity",  # the shopper's share of interactions in the item's category
    "viewed_position",  # 1 / (1 + position) of the item in recent views; 0 if absent
    "viewed_count",  # times the item appears in recent views
    "purchased_position",  # same for recent purchases
    *(f"from_{source}" for source in CANDIDATE_SOURCES),  # 1 for the candidate's source
    *SIGNAL_FEATURES,  # what each discover source says of it (online_models.candidate_signals)
)
"""Ordered ONNX input columns of the ranker (``metadata["features"]``)."""


def _json(values: Mapping[str, str], name: str) -> Any:
    raw = values.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _first_places(items: list[Any]) -> dict[str | None, float]:
    """``1 / (1 + i)`` of each sku at its first place ``i`` in ``items`` (entries that are
    not strings are skipped: no sku equals them)."""
    out: dict[str | None, float] = {}
    for i, item in enumerate(items):
        if isinstance(item, str) and item not in out:
            out[item] = 1.0 / (1.0 + i)
    return out


@dataclass(frozen=True, slots=True)
class Shopper:
    """The parsed JSON parts of a shopper's hash (parse once, score many candidates), with
    what a candidate's position features look up: each sku's first place in the recent
    views and purchases, and its count in the views (one dictionary look-up a candidate
    instead of a scan of the lists)."""

    views: list[Any]
    purchases: list[Any]
    affinity: dict[str, Any]
    # By sku (keyed ``str | None`` so that a candidate without a sku looks up 0 as well)
    viewed_at: dict[str | None, float]  # 1 / (1 + first position) in ``views``
    view_counts: Counter[str | None]
    purchased_at: dict[str | None, float]


def shopper(user: Mapping[str, str]) -> Shopper:
    views = _json(user, "recent_views")
    purchases = _json(user, "recent_purchases")
    affinity = _json(user, "category_affinity")
    views = views if isinstance(views, list) else []
    purchases = purchases if isinstance(purchases, list) else []
    return Shopper(
        views,
        purchases,
        affinity if isinstance(affinity, dict) else {},
        _first_places(views),
        Counter(v for v in views if isinstance(v, str)),
        _first_places(purchases),
    )


ITEM_INPUTS: tuple[str, ...] = (
    "views_24h",
    "units_24h",
    "add_to_carts_24h",
    "conversion_24h",
    "last_price",
    "published_price",
    "competitor_gap",
    "on_hand",
)
"""The item features :func:`item_values` reads (``SKU_FEATURES``)."""


def item_values(item: Mapping[str, str]) -> tuple[float, ...]:
    """The item's part of the row (RANKER_FEATURES[2:9]); the same for every shopper."""
    price = hash_number(item, "last_price") or hash_number(item, "published_price")
    return (
        math.log1p(max(0.0, hash_number(item, "views_24h"))),
        math.log1p(max(0.0, hash_number(item, "units_24h"))),
        math.log1p(max(0.0, hash_number(item, "add_to_carts_24h"))),
        hash_number(item, "conversion_24h"),
        math.log(price) if price > 0 else 0.0,
        hash_number(item, "competitor_gap"),
        1.0 if hash_number(item, "on_hand") > 0 else 0.0,
    )


# The from_* columns of each source: 1 for its own, 0 for the others (all 0: unknown).
_SOURCE_COLUMNS: dict[CandidateSource | None, tuple[float, ...]] = {
    None: (0.0,) * len(CANDIDATE_SOURCES),
    **{s: tuple(1.0 if s == t else 0.0 for t in CANDIDATE_SOURCES) for s in CANDIDATE_SOURCES},
}


def candidate_row(
    who: Shopper,
    item: tuple[float, ...],
    candidate_score: float,
    candidate_rank: int,
    category: str | None,
    sku: str | None,
    source: CandidateSource | None = None,
    signals: Signals = NO_SIGNALS,
) -> list[float]:
    """One row from the parsed shopper and the item's :func:`item_values`; ``source`` (where
    the candidate came from) sets one of the ``from_*`` columns, none when it is unknown (a
    search result); ``signals`` are the candidate's
    :func:`online_models.candidate_signals.candidate_signals` (zeros when no discover source
    holds it)."""
    share = who.affinity.get(category, 0.0) if category is not None else 0.0
    return [
        float(candidate_score),
        float(candidate_rank),
        *item,
        float(len(who.views)),
        float(len(who.purchases)),
        float(share) if isinstance(share, int | float) else 0.0,
        who.viewed_at.get(sku, 0.0),
        float(who.view_counts[sku]),
        who.purchased_at.get(sku, 0.0),
        *_SOURCE_COLUMNS.get(source, _SOURCE_COLUMNS[None]),
        *signals,
    ]


def ranker_features(
    user: Mapping[str, str],
    item: Mapping[str, str],
    candidate_score: float,
    candidate_rank: int,
    category: str | None,
    sku: str | None = None,
    source: CandidateSource | None = None,
    signals: Signals = NO_SIGNALS,
) -> list[float]:
    """One row of :data:`RANKER_FEATURES`.

    ``sku`` (the candidate's id) enables the position features; without it they are 0.
    To score many candidates of one shopper, parse once: :func:`shopper`, :func:`item_values`
    and :func:`candidate_row` build the same row.
    """
    return candidate_row(
        shopper(user),
        item_values(item),
        candidate_score,
        candidate_rank,
        category,
        sku,
        source,
        signals,
    )
