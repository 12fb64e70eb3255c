"""Feature state per product and per shopper, updated event by event (pure, picklable).

Names and meanings are defined once in ``schemas.features``; this module computes them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from flows.records import SkuSignal, UserSignal
from flows.windows import SlidingSums
from schemas.features import WINDOWS

LATE_AFTER_S = 300.0  # an event this much older than its key's watermark is late
MAX_COVER_DAYS = 999.0
RECENT_ITEMS = 20
MAX_SOURCES = 64  # stores (stock) and competitors (prices) kept per product
AFFINITY_DECAY = 0.9
AFFINITY_MIN = 0.01  # categories whose decayed weight fell below this are forgotten


def iso(t: float) -> str:
    """``t`` (epoch seconds) as ISO 8601 in UTC to the millisecond, as
    ``datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")`` writes it.

    Every feature row carries one, so the date and time of day are formatted once per
    second (:func:`_second`) and only the milliseconds per call: the fraction is rounded to
    microseconds half to even, as ``fromtimestamp`` rounds it, then truncated, as
    ``isoformat`` does.

    >>> iso(1767571200.0), iso(1767571200.9995)
    ('2026-01-05T00:00:00.000+00:00', '2026-01-05T00:00:00.999+00:00')
    >>> iso(1767571200.9999996)  # rounds up to the next second, as fromtimestamp does
    '2026-01-05T00:00:01.000+00:00'
    """
    frac, whole = math.modf(t)
    if not math.isfinite(whole):
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")  # raises
    us = round(frac * 1e6)
    if us >= 1_000_000:
        whole, us = whole + 1.0, us - 1_000_000
    elif us < 0:
        whole, us = whole - 1.0, us + 1_000_000
    return f"{_second(int(whole))}.{us // 1000:03d}+00:00"


@lru_cache(maxsize=4_096)
def _second(s: int) -> str:
    """A whole second as ``YYYY-MM-DDTHH:MM:SS`` in UTC: its day formatted once per day
    (:func:`_day`), its time of day by arithmetic (a UTC day is 86,400 epoch seconds). Event
    time that runs faster than the clock (a replay, a flow catching up after a restart)
    stamps nearly every row in another second, which ``datetime`` took ~2 µs to format."""
    day, in_day = divmod(s, 86_400)
    hours, in_hour = divmod(in_day, 3_600)
    minutes, seconds = divmod(in_hour, 60)
    return f"{_day(day)}T{hours:02d}:{minutes:02d}:{seconds:02d}"


@lru_cache(maxsize=64)
def _day(day: int) -> str:
    """Day ``day`` after 1970-01-01 as ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()


BUCKET_SIZES = tuple(sorted({w.bucket_s for w in WINDOWS}))
# Per window: its name and the names of the product features computed over it.
WINDOW_NAMES = tuple(
    (
        w.name,
        *(f"{m}_{w.name}" for m in ("views", "add_to_carts", "units", "revenue", "conversion")),
    )
    for w in WINDOWS
)


# The measures a product's windows sum, in the order of their sums (SlidingSums.totals).
VIEWS, ADD_TO_CARTS, UNITS, REVENUE = range(4)


def _windows() -> dict[str, SlidingSums]:
    return {w.name: SlidingSums(w.bucket_s, w.buckets, 4) for w in WINDOWS}


def new_bucket(before: float, now: float) -> bool:
    """Whether event time ``now`` lies in a later bucket than ``before`` for some window size:
    only then can moving a window's end from ``before`` to ``now`` change it.

    >>> new_bucket(100.0, 109.9), new_bucket(100.0, 110.0), new_bucket(float("-inf"), 5.0)
    (False, True, True)
    """
    return before == float("-inf") or any(now // b > before // b for b in BUCKET_SIZES)


@dataclass
class SkuFeatures:
    """Windowed activity, prices and stock of one product.

    Each window sums the four measures (views, add-to-carts, units, revenue) in one list of
    buckets: the window moves, and is snapshotted, once for all four.
    """

    windows: dict[str, SlidingSums] = field(default_factory=_windows)
    last_price: float = 0.0
    competitors: dict[str, float] = field(default_factory=dict)
    stock: dict[str, int] = field(default_factory=dict)
    late_events: int = 0
    watermark: float = float("-inf")
    _seen: dict[tuple[str, str], float] = field(default_factory=dict)

    def apply(self, s: SkuSignal) -> None:
        before = self.watermark
        if s.t < before - LATE_AFTER_S:
            self.late_events += 1
        if s.t > before:
            self.watermark = s.t
        added = s.kind in ("view", "add_to_cart", "sale")
        if s.kind == "view":
            self._add(s.t, VIEWS, 1.0)
        elif s.kind == "add_to_cart":
            self._add(s.t, ADD_TO_CARTS, 1.0)
        elif s.kind == "sale":
            self._add(s.t, UNITS, float(s.quantity))
            self._add(s.t, REVENUE, s.quantity * s.price)
            if s.t >= self._seen.get(("sale", ""), float("-inf")):
                self._seen[("sale", "")] = s.t
                self.last_price = s.price
        elif s.kind == "stock" and self._latest("stock", s.source, s.t, self.stock):
            self.stock[s.source] = s.quantity
        elif s.kind == "competitor" and self._latest("competitor", s.source, s.t, self.competitors):
            self.competitors[s.source] = s.price
        # Every window ends at the watermark. A value added at a new watermark moved them all
        # to it; otherwise each apply leaves all of them in its bucket, so they move only when
        # the watermark enters a later bucket of some window size.
        if not added and self.watermark > before and new_bucket(before, self.watermark):
            for w in self.windows.values():
                w.advance(self.watermark)

    def _latest(self, kind: str, source: str, t: float, values: dict[str, Any]) -> bool:
        """Whether ``t`` is the newest event time of ``source``'s value (latest by event time,
        not arrival order: an older event never replaces a newer value). At most
        ``MAX_SOURCES`` sources are kept per kind; a new one replaces the stalest."""
        key = (kind, source)
        seen = self._seen.get(key)
        if seen is None and len(values) >= MAX_SOURCES:
            stalest = min(values, key=lambda other: self._seen[(kind, other)])
            if self._seen[(kind, stalest)] >= t:
                return False
            del values[stalest], self._seen[(kind, stalest)]
        elif seen is not None and t < seen:
            return False
        self._seen[key] = t
        return True

    def _add(self, t: float, measure: int, value: float) -> None:
        for w in self.windows.values():
            w.add(t, measure, value)

    @property
    def min_competitor_price(self) -> float | None:
        return min(self.competitors.values()) if self.competitors else None

    @property
    def on_hand(self) -> int:
        return sum(self.stock.values())

    @property
    def days_of_cover(self) -> float | None:
        if not self.stock:
            return None
        sold = self.windows["24h"].totals[UNITS]
        return MAX_COVER_DAYS if sold <= 0 else min(MAX_COVER_DAYS, self.on_hand / sold)

    def values(self, published_price: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, views_n, carts_n, units_n, revenue_n, conversion_n in WINDOW_NAMES:
            views, carts, units, revenue = self.windows[name].totals
            out[views_n] = int(views)
            out[carts_n] = int(carts)
            out[units_n] = int(units)
            # Most rows' short windows hold no sale: their 0 is not rounded (a round() costs
            # ~0.5 µs even of 0, and a row's roundings are much of what building it costs).
            out[revenue_n] = round(revenue, 2) + 0.0 if revenue else 0.0  # + 0.0: never -0.0
            out[conversion_n] = round(units / views, 6) if units and views else 0.0
        lowest = self.min_competitor_price
        out["last_price"] = self.last_price
        out["min_competitor_price"] = lowest or 0.0
        out["competitor_gap"] = round((published_price - lowest) / lowest, 6) if lowest else 0.0
        out["on_hand"] = self.on_hand
        cover = self.days_of_cover
        out["days_of_cover"] = round(cover, 3) if cover is not None else MAX_COVER_DAYS
        out["late_events"] = self.late_events
        out["event_time"] = iso(self.watermark)
        out["published_price"] = published_price
        return out


@dataclass
class ShopperFeatures:
    """What one shopper looked at and bought lately, and their current session."""

    recent_views: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_ITEMS))
    recent_purchases: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_ITEMS))
    affinity: dict[str, float] = field(default_factory=dict)
    affinity_scale: float = 1.0
    session_id: str = ""
    session_events: int = 0
    session_start: float = 0.0
    watermark: float = float("-inf")

    def apply(self, s: UserSignal, categories: dict[str, str]) -> None:
        self.watermark = max(self.watermark, s.t)
        if s.session_id == self.session_id:
            self.session_events += 1
        elif s.t >= self.session_start:  # an earlier session's event, read late, is no new one
            self.session_id, self.session_events, self.session_start = s.session_id, 1, s.t
        if s.kind == "view":
            self.recent_views.appendleft(s.skus[0])
        elif s.kind == "purchase":
            for sku in s.skus:
                self.recent_purchases.appendleft(sku)
        if s.kind in ("view", "add_to_cart", "wishlist", "purchase"):
            # Lazy decay: stored weights are divided by affinity_scale when read.
            self.affinity_scale /= AFFINITY_DECAY
            if self.affinity_scale > 1e6:
                self.affinity = {k: v / self.affinity_scale for k, v in self.affinity.items()}
                self.affinity = {k: v for k, v in self.affinity.items() if v >= AFFINITY_MIN}
                self.affinity_scale = 1.0
            for sku in s.skus:
                cat = categories.get(sku)
                if cat is not None:
                    self.affinity[cat] = self.affinity.get(cat, 0.0) + self.affinity_scale

    def recent_items(self, n: int) -> list[str]:
        """Up to ``n`` distinct items: recent views first (newest first), then purchases.

        Their neighbours are the co-occurrence candidates of the recommender.
        """
        seen: list[str] = []
        for sku in (*self.recent_views, *self.recent_purchases):
            if sku not in seen:
                seen.append(sku)
                if len(seen) >= n:
                    break
        return seen

    def values(self) -> dict[str, Any]:
        floor = AFFINITY_MIN * self.affinity_scale
        live = {k: v for k, v in self.affinity.items() if v >= floor}
        total = sum(live.values()) or 1.0
        return {
            "recent_views": list(self.recent_views),
            "recent_purchases": list(self.recent_purchases),
            "category_affinity": {k: round(v / total, 4) for k, v in live.items()},
            "session_id": self.session_id,
            "session_events": self.session_events,
            "session_seconds": round(max(0.0, self.watermark - self.session_start), 3),
            "event_time": iso(self.watermark),
        }
