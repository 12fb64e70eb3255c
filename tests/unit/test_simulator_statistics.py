"""The simulator's ground truth is recoverable from its own output.

Prices are varied per product and day through the same PriceBook the closed loop uses;
a log-log regression of daily units on price (with weekday dummies) over the emitted
order events must recover each product's configured elasticity.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from datetime import datetime

import numpy as np
import pytest

from schemas.topics import ALL_TOPICS, ORDERS
from simulator.config import ShopConfig
from simulator.shop import DAY, Shop

DAYS = 56


@pytest.fixture(scope="module")
def varied_price_run() -> tuple[Shop, dict[tuple[str, int], tuple[int, float]]]:
    config = ShopConfig(
        seed=7,
        products=10,
        categories=2,
        shoppers=1_000,
        sessions_per_day=2_000,
        competitors=1,
        competitor_updates_per_day=1,
        stock_days=60,
        reorder_days=30,
    )
    shop = Shop(config)
    price_rng = random.Random(99)
    day_seen = -1
    units: dict[tuple[str, int], int] = defaultdict(int)
    prices: dict[tuple[str, int], float] = {}
    for event in shop.events(until=shop.start + DAYS * DAY):
        day = int((event.time - shop.start) // DAY)
        if day != day_seen:  # a new price for every product each day
            day_seen = day
            for p in shop.products:
                shop.prices.set(p.index, round(p.list_price * price_rng.uniform(0.6, 1.4), 2))
                prices[(p.sku, day)] = shop.prices.current[p.index]
        if event.topic is ORDERS:
            for line in event.payload["lines"]:
                units[(line["sku"], day)] += line["quantity"]
    return shop, {k: (units.get(k, 0), v) for k, v in prices.items()}


def test_log_log_fit_recovers_elasticities(
    varied_price_run: tuple[Shop, dict[tuple[str, int], tuple[int, float]]],
) -> None:
    shop, daily = varied_price_run
    errors = []
    for p in shop.products:
        rows = [(d, *daily[(p.sku, d)]) for d in range(DAYS)]
        rows = [r for r in rows if r[1] > 0]
        assert len(rows) >= DAYS - 2, f"{p.sku} sold on too few days"
        weekday = np.array([(shop.config.start.weekday() + d) % 7 for d, _, _ in rows])
        x = np.column_stack(
            [np.log([price for _, _, price in rows])]
            + [(weekday == k).astype(float) for k in range(7)]
        )
        y = np.log([u for _, u, _ in rows])
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        errors.append(coef[0] - p.elasticity)
    errors_arr = np.abs(np.array(errors))
    assert errors_arr.mean() <= 0.15, errors
    assert errors_arr.max() <= 0.4, errors


def test_every_emitted_event_satisfies_the_contract(
    varied_price_run: tuple[Shop, dict[tuple[str, int], tuple[int, float]]],
) -> None:
    shop = Shop(ShopConfig(seed=3, products=40, shoppers=300, sessions_per_day=3_000))
    seen_topics = set()
    ids = set()
    for event in shop.events(until=shop.start + DAY / 2):
        model = event.topic.model.model_validate(event.payload)
        assert event.topic.key_of(model) == event.key.encode()
        ids.add(model.event_id)
        seen_topics.add(event.topic.name)
    assert seen_topics == {t.name for t in ALL_TOPICS if t.direction == "in"}
    assert len(ids) == sum(shop.stats.events.values())


def test_events_come_out_in_event_time_order() -> None:
    shop = Shop(ShopConfig(seed=5, products=30, shoppers=200, sessions_per_day=5_000))
    times = [
        datetime.fromisoformat(e.payload["event_time"])
        for e in shop.events(until=shop.start + DAY / 4)
    ]
    assert len(times) > 1_000
    assert times == sorted(times)


def test_same_seed_same_events_and_different_seed_different_events() -> None:
    def run(seed: int) -> list[dict[str, object]]:
        shop = Shop(ShopConfig(seed=seed, products=20, shoppers=100, sessions_per_day=2_000))
        return [e.payload for e in shop.events(until=shop.start + 3_600 * 3)]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_sales_follow_the_published_price() -> None:
    """Raising every price lowers units sold by about the elasticity (closed loop)."""

    def units_at(multiplier: float) -> int:
        shop = Shop(ShopConfig(seed=21, products=20, shoppers=500, sessions_per_day=4_000))
        for p in shop.products:
            shop.prices.set(p.index, p.list_price * multiplier)
        for _ in shop.events(until=shop.start + 2 * DAY):
            pass
        return shop.stats.units

    assert units_at(1.3) < 0.85 * units_at(1.0)
    assert units_at(0.8) > 1.15 * units_at(1.0)


def test_inventory_depletes_and_restocks() -> None:
    shop = Shop(
        ShopConfig(
            seed=4,
            products=10,
            shoppers=300,
            sessions_per_day=4_000,
            stock_days=1.0,
            reorder_days=0.5,
        )
    )
    levels: dict[tuple[str, str], list[int]] = defaultdict(list)
    for e in shop.events(until=shop.start + 3 * DAY):
        if e.topic.name == "inventory":
            levels[(e.payload["sku"], e.payload["store_id"])].append(e.payload["on_hand"])
    went_down = any(any(b < a for a, b in itertools.pairwise(v)) for v in levels.values())
    went_up = any(any(b > a for a, b in itertools.pairwise(v)) for v in levels.values())
    assert went_down
    assert went_up
