"""A short discover list topped up from the popular items, served by the API from the real
Redis the flows' sinks write: only items the shopper has not touched fill it, although
items they touched long ago have left their buy-again list (they are still in the stored
shopper's ``seen``)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from flows.catalogue import store_catalogue
from flows.sinks.serving import ItemGraphWriter, RecommendationWriter
from schemas.catalogue import CatalogueItem
from schemas.settings import Settings
from tests.credentials import admin_headers
from tests.shoppers import K, viewed

pytestmark = pytest.mark.integration

TOUCHED = [f"SKU-T{n:02d}" for n in range(K + 2)]  # viewed in this order: the first two fall
NEW = ["SKU-NEW1", "SKU-NEW2", "SKU-NEW3"]  # out of buy again (K items), not out of seen


def test_a_short_discover_list_is_topped_up_only_with_items_the_shopper_has_not_touched(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every product is in one category and none has neighbours: discover finds the three
    the shopper has not viewed, a list of 20 is topped up from the popular items, of which
    the most popular are the ones they viewed (before: the two no longer in buy again filled
    it, in discover and in the mixed list)."""
    settings = stack.model_copy(
        update={
            "redis_prefix": f"{stack.redis_prefix}topup{uuid.uuid4().hex[:6]}:",
            "registry_dir": tmp_path_factory.mktemp("registry"),
            "rate_limit_per_s": 0.0,
        }
    )
    categories = dict.fromkeys(TOUCHED + NEW, "pantry")
    store_catalogue(
        settings,
        [
            CatalogueItem(sku=s, category=c, list_price=3.0, unit_cost=1.0)
            for s, c in categories.items()
        ],
    )
    graph = ItemGraphWriter(settings)
    popularity = {sku: 100.0 - n for n, sku in enumerate(TOUCHED + NEW)}
    graph.write_batch([(sku, ("pantry", count)) for sku, count in popularity.items()])
    graph.close()
    writer = RecommendationWriter(settings)
    writer.write_batch([viewed("u-topup", TOUCHED, categories)])
    writer.close()
    with TestClient(create_app(settings), headers=admin_headers(settings)) as c:
        again = c.get("/recommendations/u-topup", params={"list": "again", "k": 20}).json()
        discover = c.get("/recommendations/u-topup", params={"list": "discover", "k": 20}).json()
        mixed = c.get("/recommendations/u-topup", params={"k": 20}).json()
    assert set(TOUCHED) - {i["sku"] for i in again["items"]} == set(TOUCHED[:2])
    assert sorted(i["sku"] for i in discover["items"]) == NEW
    assert sorted(i["sku"] for i in mixed["items"]) == sorted(TOUCHED[2:] + NEW)
