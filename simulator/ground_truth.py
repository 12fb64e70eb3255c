"""The simulator's ground truth, written to a JSON file so every model can be scored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from simulator.catalogue import category_name
from simulator.shop import Shop


def ground_truth(shop: Shop) -> dict[str, Any]:
    """Everything the models try to learn, plus what actually happened."""
    cfg = shop.config
    sh = shop.shoppers
    return {
        "config": cfg.model_dump(mode="json"),
        "categories": [category_name(c) for c in range(cfg.categories)],
        "products": [
            {
                "sku": p.sku,
                "category": category_name(p.category),
                "list_price": p.list_price,
                "unit_cost": p.unit_cost,
                "elasticity": p.elasticity,
                "conversion": p.conversion,
                "seasonality": list(p.seasonality),
                "expected_daily_units_at_list_price": float(shop.expected_daily_units[p.index]),
                "popularity": float(sh.popularity[p.index]),
            }
            for p in shop.products
        ],
        "shoppers": [
            {
                "user_id": user_id,
                "home_store": f"store-{int(sh.home_store[u]) + 1:02d}",
                "activity": float(sh.activity[u]),
                "category_tastes": [round(float(x), 6) for x in sh.category_tastes[u]],
                "latent": [round(float(x), 6) for x in sh.latent[u]],
            }
            for u, user_id in enumerate(shop.user_ids)
        ],
        "purchases": {
            user: [[p.time, p.sku, p.quantity, p.unit_price] for p in purchases]
            for user, purchases in shop.purchases.items()
        },
        "stats": {
            "sessions": shop.stats.sessions,
            "events": shop.stats.events,
            "orders": shop.stats.orders,
            "units": shop.stats.units,
            "revenue": round(shop.stats.revenue, 2),
            "profit": round(shop.stats.profit, 2),
            "stockouts": shop.stats.stockouts,
        },
    }


def write_ground_truth(shop: Shop, path: Path) -> None:
    """Write :func:`ground_truth` as JSON (purchases as ``[epoch_s, sku, qty, price]``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(ground_truth(shop), option=orjson.OPT_SERIALIZE_NUMPY))
