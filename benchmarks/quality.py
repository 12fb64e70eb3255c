"""Model quality against the simulator's ground truth -> benchmarks/results/quality.json.

Closed loop over DAYS simulated days, in process: the shop's events drive the same state
classes the dataflow runs (flows.steps: SkuState with its ProductPricer, ShopperState,
ItemNeighbours), and every price change is applied to the shop at once. Three runs share the
seed: tillflow's prices, an oracle that knows each true demand curve (the profit-optimal
price under the same guardrails: floor, ceiling, competitor cap), and fixed list prices.

- ``elasticity_mae``: |learned − true| elasticity over products with ≥ 200 units sold.
- ``profit_vs_oracle``, ``profit_vs_static``: profit ratios of the three runs.
- ``hr_at_10`` (and ``_popularity``, ``_vs_popularity``): when a shopper arrives (the first
  event of a session, after a week of warm-up), take their top-10 from tillflow's recommender
  and the 10 most popular products at that moment; does the order of that session contain
  one of them? Lists are taken on arrival, not at checkout: at checkout the shopper's own
  cart would give the answer away.
"""

from __future__ import annotations

import heapq
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from benchmarks.common import Mode, parse_mode, write_result
from flows.records import Accepted
from flows.steps import (
    ItemNeighbours,
    ShopperState,
    SkuState,
    new_sku_state,
    sku_signals,
    user_signal,
)
from online_models.pricing import Guardrails, optimal_price
from online_models.recommender import CATEGORY_ITEMS, recommend
from schemas.topics import by_name
from simulator.config import ShopConfig
from simulator.shop import DAY, Emitted, Shop

DAYS = 28
WARMUP_DAYS = 7
SMOKE_SHOP = ShopConfig(products=50, shoppers=500, sessions_per_day=1_000)
MIN_UNITS = 200


def accepted(e: Emitted) -> Accepted:
    topic = by_name(e.topic.name)
    event = topic.model.model_validate(e.payload)
    return Accepted.of(topic.name, 0, 0, e.key.encode(), b"", event)


def run_static(config: ShopConfig, days: int = DAYS) -> float:
    shop = Shop(config)
    for _ in shop.events(until=shop.start + days * DAY):
        pass
    return shop.stats.profit


def run_oracle(config: ShopConfig, rails: Guardrails, days: int = DAYS) -> float:
    shop = Shop(config)
    lowest: dict[str, dict[str, float]] = {}
    index = {p.sku: p for p in shop.products}

    def best(sku: str) -> float:
        p = index[sku]
        floor, ceiling = p.unit_cost * (1 + rails.min_margin), p.list_price * rails.max_markup
        price = optimal_price(p.unit_cost, p.elasticity, ceiling)
        if lowest.get(sku):
            price = min(price, min(lowest[sku].values()) * (1 + rails.max_competitor_gap))
        return round(min(max(price, floor), ceiling), 2)

    for e in shop.events(until=shop.start + days * DAY):
        if e.topic.name == "competitor-prices":
            sku = e.payload["sku"]
            lowest.setdefault(sku, {})[e.payload["competitor"]] = e.payload["price"]
            shop.prices.set(index[sku].index, best(sku))
    return shop.stats.profit


def run_tillflow(
    config: ShopConfig, days: int = DAYS, warmup_days: int = WARMUP_DAYS
) -> dict[str, Any]:
    shop = Shop(config)
    catalogue = {c.sku: c for c in shop.catalogue()}
    categories = {c.sku: c.category for c in catalogue.values()}
    index = {p.sku: p.index for p in shop.products}
    skus: dict[str, SkuState] = {}
    shoppers: dict[str, ShopperState] = {}
    items: dict[str, ItemNeighbours] = {}
    hits = hits_popular = trials = 0
    warm = shop.start + warmup_days * DAY

    by_category: dict[str, list[str]] = {}
    for sku, cat in categories.items():
        by_category.setdefault(cat, []).append(sku)
    shown: dict[str, tuple[set[str], set[str]]] = {}  # user -> (ours, most popular) on arrival
    sessions: dict[str, str] = {}

    def most_popular(candidates: list[str], n: int) -> list[tuple[str, float]]:
        scored = ((s, skus[s].popularity) for s in candidates if s in skus)
        return heapq.nlargest(n, scored, key=lambda kv: kv[1])

    for e in shop.events(until=shop.start + days * DAY):
        rec = accepted(e)
        if e.topic.name == "orders" and e.payload["user_id"] in shown:
            bought = {line["sku"] for line in e.payload["lines"]}
            ours, popular = shown[e.payload["user_id"]]
            trials += 1
            hits += bool(bought & ours)
            hits_popular += bool(bought & popular)
        if e.topic.name == "user-activity" and e.time >= warm:
            user, session = e.payload["user_id"], e.payload["session_id"]
            if sessions.get(user) != session:  # a shopper arrives: what would we show?
                sessions[user] = session
                profile = (shoppers.get(user) or ShopperState(user)).profile(categories)
                top = most_popular(list(skus), 20)
                best = {
                    c: most_popular(by_category[c], CATEGORY_ITEMS) for c, _ in profile.categories
                }
                near = {s: dict(items[s].co.top()) for s in profile.recent if s in items}
                ranked, _ = recommend(profile, best, near, top, 10)
                shown[user] = ({s for s, _ in ranked}, {s for s, _ in top[:10]})
        for sku, (_, signal) in sku_signals(rec):
            state = skus.get(sku) or skus.setdefault(sku, new_sku_state(sku, catalogue))
            out = state.apply(signal)
            if out.change is not None:
                shop.prices.set(index[sku], out.change.price)
        routed = user_signal(rec)
        if routed is not None:
            user, (_, signal) = routed
            shopper = shoppers.get(user) or shoppers.setdefault(user, ShopperState(user))
            for item, (_, (other, weight)) in shopper.apply(signal, categories).pairs:
                items.setdefault(item, ItemNeighbours()).add(other, weight)
    truth = {p.sku: p.elasticity for p in shop.products}
    sold: dict[str, int] = {}
    for purchases in shop.purchases.values():
        for pu in purchases:
            sold[pu.sku] = sold.get(pu.sku, 0) + pu.quantity
    errors = [
        abs(st.pricer.demand.elasticity - truth[sku])
        for sku, st in skus.items()
        if st.pricer is not None and sold.get(sku, 0) >= MIN_UNITS
    ]
    return {
        "profit": shop.stats.profit,
        "elasticity_mae": float(np.mean(errors)),
        "products_scored": len(errors),
        "hr_at_10": hits / trials,
        "hr_at_10_popularity": hits_popular / trials,
        "recommendation_trials": trials,
        "price_changes": sum(st.pricer.changes for st in skus.values() if st.pricer),
    }


def main(mode: Mode) -> None:
    config = SMOKE_SHOP if mode.smoke else ShopConfig()
    days, warmup = mode.size(DAYS, 2), mode.size(WARMUP_DAYS, 1)
    started = time.perf_counter()
    tillflow = run_tillflow(config, days, warmup)
    oracle = run_oracle(config, Guardrails(), days)
    static = run_static(config, days)
    figures = {
        "elasticity_mae": tillflow["elasticity_mae"],
        "profit_tillflow": tillflow["profit"],
        "profit_oracle": oracle,
        "profit_static": static,
        "profit_vs_oracle": tillflow["profit"] / oracle,
        "profit_vs_static": tillflow["profit"] / static,
        "hr_at_10": tillflow["hr_at_10"],
        "hr_at_10_popularity": tillflow["hr_at_10_popularity"],
        "hr_at_10_vs_popularity": tillflow["hr_at_10"] / tillflow["hr_at_10_popularity"],
    }
    runs = {
        "repeats": 1,
        "days": days,
        "seed": config.seed,
        "products_scored": tillflow["products_scored"],
        "recommendation_trials": tillflow["recommendation_trials"],
        "price_changes": tillflow["price_changes"],
        "seconds": time.perf_counter() - started,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = write_result("quality", figures, runs, mode)
    print(", ".join(f"{k}={v:,.3f}" for k, v in figures.items()))
    print(f"wrote {path}")


if __name__ == "__main__":
    main(parse_mode(__doc__))
