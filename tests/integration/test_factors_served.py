"""Item factors from the batch step served through the real API and Redis: once
``batch/factors.py`` has published them, a shopper's discover list holds the items the factor
source finds for them (and did not before); a broken file leaves the last factors served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from batch.factors import publish_item_factors
from flows.sinks.serving import ItemGraphWriter, RecommendationWriter
from online_models.factors import factors_path
from schemas.lake import USER_ACTIVITY
from schemas.settings import Settings
from tests.credentials import admin_headers
from tests.flow_processes import isolated_settings
from tests.shoppers import viewed
from tests.silver_rows import activity, write_silver

pytestmark = pytest.mark.integration

TEA, LEMON, HONEY = "SKU-TEA", "SKU-LEMON", "SKU-HONEY"
CATEGORIES = {TEA: "tea", LEMON: "fruit", HONEY: "sweet"}


@pytest.fixture
def shop(stack: Settings, tmp_path: Path) -> Settings:
    """A shop whose graph knows tea's neighbour (lemon) and nothing of honey: only the factors
    (other shoppers viewed tea and honey together) can find honey."""
    # every request reads again (no API cache): the file is checked each time
    settings = isolated_settings(stack, "factors", tmp_path, api_cache_ttl_s=0.0)
    graph = ItemGraphWriter(settings)
    graph.write_batch([(TEA, [(LEMON, 1.0)]), (TEA, ("tea", 5.0)), (LEMON, ("fruit", 3.0))])
    graph.close()
    writer = RecommendationWriter(settings)
    writer.write_batch([viewed("u-f", [TEA], CATEGORIES)])
    writer.close()
    return settings


@pytest.fixture
def client(shop: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(shop), headers=admin_headers(shop)) as c:
        yield c


def _discover(client: TestClient) -> list[str]:
    answer = client.get("/recommendations/u-f", params={"list": "discover", "k": 10})
    assert answer.status_code == 200
    return [i["sku"] for i in answer.json()["items"]]


def test_the_discover_list_holds_the_factor_source_once_published(
    shop: Settings, client: TestClient
) -> None:
    assert HONEY not in _discover(client)  # no factors yet: the two-source blend
    together = [activity(f"o{n}", sku) for n in range(8) for sku in (TEA, HONEY)]
    apart = [activity(f"x{n}", f"SKU-X{n % 3}") for n in range(8)]  # unrelated to tea
    write_silver(shop.lake_dir, USER_ACTIVITY, together + apart)
    publish_item_factors(shop)
    found = _discover(client)
    assert HONEY in found
    assert TEA not in found  # the shopper's own item stays out

    path = factors_path(shop.registry_dir, shop.mlflow_model_prefix)
    path.write_bytes(b"not an npz")
    assert HONEY in _discover(client)  # the last factors that loaded are kept
