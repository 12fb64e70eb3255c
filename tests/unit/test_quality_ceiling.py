"""The quality benchmark's ceiling list (benchmarks.quality.Ceiling) follows the simulator's
truth: it names what shoppers go on to buy far more often than the best sellers do, and a
product priced out of demand leaves it."""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks.quality import Ceiling
from simulator.config import ShopConfig
from simulator.shop import DAY, Shop

LIST = 3


@pytest.fixture(scope="module")
def shop() -> Shop:
    return Shop(
        ShopConfig(
            seed=11, channels="web", products=30, categories=3, shoppers=300, sessions_per_day=3_000
        )
    )


def test_the_ceiling_names_what_shoppers_buy_more_often_than_the_best_sellers(shop: Shop) -> None:
    ceiling = Ceiling.of(shop)
    orders = [e for e in shop.events(until=shop.start + 4 * DAY) if e.topic.name == "orders"]
    sold = Counter(line["sku"] for e in orders for line in e.payload["lines"])
    best_sellers = {sku for sku, _ in sold.most_common(LIST)}
    hits = popular = 0
    for e in orders:
        bought = {line["sku"] for line in e.payload["lines"]}
        hits += bool(bought & ceiling.best(e.payload["user_id"], e.time, LIST))
        popular += bool(bought & best_sellers)
    assert len(orders) > 1_000
    # the best sellers are counted on these very orders, the ceiling is not
    assert hits > 1.5 * popular


def test_a_product_priced_out_of_demand_leaves_the_ceiling(shop: Shop) -> None:
    ceiling = Ceiling.of(shop)
    user, t = shop.user_ids[0], shop.start
    first = max(ceiling.best(user, t, 1))
    assert first in ceiling.best(user, t, LIST)
    index = next(p.index for p in shop.products if p.sku == first)
    list_price = shop.prices.current[index]
    shop.prices.set(index, 20 * list_price)
    try:
        assert first not in ceiling.best(user, t, LIST)
    finally:
        shop.prices.set(index, list_price)
