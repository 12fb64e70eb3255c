"""Item factors from the batch step served through the real API and Redis: once
``batch/factors.py`` has published them, a shopper's discover list holds the items the factor
source finds for them (and did not before); a broken file leaves the last factors served. A
ranker (registered in the real MLflow) sees the factor source through its own columns; one
trained before those columns existed is refused, with the reason, and the list is served
without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from api.main import create_app
from batch.factors import publish_item_factors
from flows.sinks.serving import ItemGraphWriter, RecommendationWriter
from online_models.factors import factors_path
from online_models.ranking import RANKER_FEATURES
from schemas.lake import USER_ACTIVITY
from schemas.settings import Settings
from tests.credentials import admin_headers
from tests.flow_processes import isolated_settings
from tests.registered import model_prefix, register_onnx
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
    settings = isolated_settings(
        stack, "factors", tmp_path, api_cache_ttl_s=0.0, mlflow_model_prefix=model_prefix()
    )
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
    return [i["sku"] for i in _discover_body(client)["items"]]


def _discover_body(client: TestClient) -> dict[str, Any]:
    answer = client.get("/recommendations/u-f", params={"list": "discover", "k": 10})
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def _publish_factors(shop: Settings) -> None:
    """Other shoppers view tea and honey together, and unrelated items apart."""
    together = [activity(f"o{n}", sku) for n in range(8) for sku in (TEA, HONEY)]
    apart = [activity(f"x{n}", f"SKU-X{n % 3}") for n in range(8)]  # unrelated to tea
    write_silver(shop.lake_dir, USER_ACTIVITY, together + apart)
    publish_item_factors(shop)


def _register_ranker(shop: Settings, column: str, features: tuple[str, ...]) -> str:
    """A ranker whose score rises with ``column`` alone (every other input 0 in training),
    trained on the input columns ``features``, registered and promoted; its label."""
    rng = np.random.default_rng(0)
    x = np.zeros((200, len(features)), dtype=np.float32)
    at = features.index(column)
    x[:, at] = rng.normal(size=200)
    model = LogisticRegression().fit(x, (x[:, at] > 0).astype(int))
    onx = to_onnx(model, x[:1], target_opset=17, options={id(model): {"zipmap": False}})
    return register_onnx(shop, "ranker", onx.SerializeToString(), features).label


def test_the_discover_list_holds_the_factor_source_once_published(
    shop: Settings, client: TestClient
) -> None:
    assert HONEY not in _discover(client)  # no factors yet: the two-source blend
    _publish_factors(shop)
    found = _discover(client)
    assert HONEY in found
    assert TEA not in found  # the shopper's own item stays out

    path = factors_path(shop.registry_dir, shop.mlflow_model_prefix)
    path.write_bytes(b"not an npz")
    assert HONEY in _discover(client)  # the last factors that loaded are kept


def test_a_ranker_trained_on_the_factor_signals_orders_the_list_by_them(shop: Settings) -> None:
    """Without the ranker the neighbour (lemon) leads; a ranker that trusts the factor
    source's part of the score puts the item the factors found (honey) first, labelled as
    theirs: the API hands the ranker the factor source's part."""
    _publish_factors(shop)
    label = _register_ranker(shop, "factor_part", RANKER_FEATURES)
    with TestClient(create_app(shop), headers=admin_headers(shop)) as client:
        body = _discover_body(client)
    assert (body["source"], body["model_version"]) == ("ranker", label)
    sources = {i["sku"]: i["source"] for i in body["items"]}
    assert (sources[HONEY], sources[LEMON]) == ("factors", "similar")
    assert body["items"][0]["sku"] == HONEY


def test_a_ranker_trained_before_the_factor_columns_is_refused_with_its_reason(
    shop: Settings,
) -> None:
    _publish_factors(shop)
    older = tuple(
        f for f in RANKER_FEATURES if f not in ("from_factors", "factor_part", "factor_rank")
    )
    label = _register_ranker(shop, "similar_part", older)
    with TestClient(create_app(shop), headers=admin_headers(shop)) as client:
        body = _discover_body(client)
        models = {m["name"]: m for m in client.get("/admin/models").json()}
        ready = client.get("/readyz")
    assert body["source"] == "streaming"  # the blend, as without a ranker
    assert body["items"][0]["sku"] == LEMON
    ranker = models["ranker"]
    assert ranker["loaded"] is None
    assert ranker["error"].startswith(f"{label} was trained on other input columns")
    assert "missing: from_factors, factor_part, factor_rank" in ranker["error"]
    assert ready.status_code == 200  # the API serves without the ranker: still ready
    assert ready.json()["checks"]["model:ranker"] == ranker["error"]
