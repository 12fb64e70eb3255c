"""Sample gold tables from the simulator, for the graph's tests and benchmark.

This is *not* the production gold job (that is ``batch/``, bronze → silver → gold): it is a
small, direct builder that turns the simulator's events into Delta tables conforming to
``schemas.lake.GOLD_SCHEMAS``, so the graph loader can be tested and measured on its own.
It writes the way a daily batch job would: order lines are appended, the per-shopper and
per-day aggregates are rewritten whole (overwrite), each write one Delta version.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import write_deltalake

from schemas.catalogue import CatalogueItem
from schemas.lake import (
    GOLD_SCHEMAS,
    ORDERS_ENRICHED,
    SKU_DAILY,
    USER_ITEM_INTERACTIONS,
    gold_path,
)
from simulator.shop import Emitted

VIEW_WEIGHT, CART_WEIGHT, UNIT_WEIGHT = 1.0, 3.0, 10.0


def _time(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


@dataclass
class _Interaction:
    views: int = 0
    carts: int = 0
    purchases: int = 0
    first: float = float("inf")
    last: float = float("-inf")

    def touch(self, t: float) -> None:
        self.first, self.last = min(self.first, t), max(self.last, t)


@dataclass
class _Day:
    units: int = 0
    revenue: float = 0.0
    orders: int = 0
    prices: list[float] = field(default_factory=list)
    views: int = 0
    competitor_min: float | None = None
    stock: dict[str, int] = field(default_factory=dict)  # store -> last on hand


class SampleGold:
    """Accumulates simulator events; :meth:`write` commits the gold tables to ``lake_dir``."""

    def __init__(self, lake_dir: Path, catalogue: Iterable[CatalogueItem]) -> None:
        self.lake_dir = lake_dir
        self.catalogue = {c.sku: c for c in catalogue}
        self.pending_lines: list[dict[str, Any]] = []
        self.interactions: dict[tuple[str, str], _Interaction] = {}
        self.days: dict[tuple[str, str], _Day] = {}
        self.events = 0

    def add(self, events: Iterable[Emitted]) -> None:
        for e in events:
            self.events += 1
            p, t = e.payload, e.time
            date = _time(t).date().isoformat()
            if e.topic.name == "orders":
                self._order(p, t, date)
            elif e.topic.name == "user-activity" and p["sku"] is not None:
                item = self._interaction(p["user_id"], p["sku"], t)
                if p["action"] == "view":
                    item.views += 1
                    self._day(p["sku"], date).views += 1
                elif p["action"] == "add_to_cart":
                    item.carts += 1
            elif e.topic.name == "competitor-prices":
                day = self._day(p["sku"], date)
                low = day.competitor_min
                day.competitor_min = p["price"] if low is None else min(low, p["price"])
            elif e.topic.name == "inventory":
                self._day(p["sku"], date).stock[p["store_id"]] = p["on_hand"]

    def _interaction(self, user: str, sku: str, t: float) -> _Interaction:
        item = self.interactions.get((user, sku))
        if item is None:
            item = self.interactions[(user, sku)] = _Interaction()
        item.touch(t)
        return item

    def _day(self, sku: str, date: str) -> _Day:
        day = self.days.get((sku, date))
        if day is None:
            day = self.days[(sku, date)] = _Day()
        return day

    def _order(self, p: dict[str, Any], t: float, date: str) -> None:
        for line in p["lines"]:
            sku, qty, price = line["sku"], int(line["quantity"]), float(line["unit_price"])
            item = self.catalogue.get(sku)
            cost = item.unit_cost if item else None
            self.pending_lines.append(
                {
                    "order_id": p["order_id"],
                    "event_id": p["event_id"],
                    "event_time": _time(t),
                    "date": date,
                    "user_id": p["user_id"],
                    "store_id": p["store_id"],
                    "sku": sku,
                    "category": item.category if item else None,
                    "quantity": qty,
                    "unit_price": price,
                    "unit_cost": cost,
                    "revenue": qty * price,
                    "margin": None if cost is None else qty * (price - cost),
                }
            )
            self._interaction(p["user_id"], sku, t).purchases += qty
            day = self._day(sku, date)
            day.units += qty
            day.revenue += qty * price
            day.orders += 1
            day.prices.append(price)

    def write(self) -> None:
        """Append the new order lines; rewrite the two aggregate tables."""
        orders = pa.Table.from_pylist(self.pending_lines, GOLD_SCHEMAS[ORDERS_ENRICHED])
        write_deltalake(gold_path(self.lake_dir, ORDERS_ENRICHED), orders, mode="append")
        self.pending_lines = []
        interactions = [
            {
                "user_id": user,
                "sku": sku,
                "views": i.views,
                "carts": i.carts,
                "purchases": i.purchases,
                "weight": VIEW_WEIGHT * i.views + CART_WEIGHT * i.carts + UNIT_WEIGHT * i.purchases,
                "first_time": _time(i.first),
                "last_time": _time(i.last),
            }
            for (user, sku), i in self.interactions.items()
        ]
        self._overwrite(USER_ITEM_INTERACTIONS, interactions)
        daily = [
            {
                "sku": sku,
                "date": date,
                "day_start": datetime.fromisoformat(date).replace(tzinfo=UTC),
                "units": d.units,
                "revenue": d.revenue,
                "orders": d.orders,
                "avg_price": d.revenue / d.units if d.units else None,
                "min_price": min(d.prices, default=None),
                "max_price": max(d.prices, default=None),
                "views": d.views,
                "competitor_min": d.competitor_min,
                "stock": sum(d.stock.values()) if d.stock else None,
            }
            for (sku, date), d in self.days.items()
        ]
        self._overwrite(SKU_DAILY, daily)

    def _overwrite(self, table: str, rows: list[dict[str, Any]]) -> None:
        data = pa.Table.from_pylist(rows, GOLD_SCHEMAS[table])
        write_deltalake(gold_path(self.lake_dir, table), data, mode="overwrite")
