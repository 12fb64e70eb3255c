"""The pricing detail explains the served demand forecast with the served version's booster.

A LightGBM demand model goes through the production export and registry; the API explains
the forecast it serves for a product, the pricing page draws it (in a real headless
Chromium), and the explanation follows a promotion too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime

import lightgbm as lgb
import numpy as np
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from api.main import create_app
from batch.onnx_export import export
from batch.promotion import register_and_promote
from online_models.demand_features import DEMAND_FEATURES, demand_features
from registry import ModelRegistry
from registry.tracking import TrainingRecord
from schemas.settings import Settings
from tests.credentials import admin_headers
from tests.flow_processes import free_port
from tests.integration.test_serving_models import SKU_ROWS, SKUS, _eventually, _text
from tests.integration.test_serving_models import models_shop as models_shop
from tests.served import serve_api

pytestmark = pytest.mark.integration

PRICE = DEMAND_FEATURES.index("price")
UNITS = DEMAND_FEATURES.index("units_24h")


def _register(settings: Settings, seed: int) -> str:
    """Fit a Poisson LightGBM on synthetic rows; register and promote it like training does."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (2000, len(DEMAND_FEATURES))).astype(np.float32)
    x[:, PRICE] = rng.uniform(5, 20, 2000)
    x[:, UNITS] = rng.integers(0, 12, 2000)
    y = rng.poisson(np.exp(2.0 - 0.1 * x[:, PRICE] + 0.08 * x[:, UNITS]))
    model = lgb.LGBMRegressor(objective="poisson", n_estimators=60 + seed, n_jobs=1, verbose=-1)
    model.fit(x, y)
    registry = ModelRegistry.from_settings(settings)
    metadata = {"features": list(DEMAND_FEATURES), "metrics": {"wape": 0.3}}
    outcome = register_and_promote(
        settings,
        registry,
        export(model, x[:200]),
        metadata,
        TrainingRecord("demand", {"seed": str(seed)}, metadata["metrics"], {}),
        x[:200],
        lambda scores: float(np.mean(scores)),
        "wape",
        higher_is_better=False,
    )
    return registry.promote("demand", outcome.version.version).label


@pytest.fixture(scope="module")
def client(models_shop: Settings) -> Iterator[TestClient]:
    _register(models_shop, 1)
    with TestClient(create_app(models_shop), headers=admin_headers(models_shop)) as c:
        yield c


def test_the_pricing_detail_explains_the_served_forecast(client: TestClient) -> None:
    body = client.get(f"/pricing/{SKUS[3]}").json()
    why, current = body["explanation"], body["current"]
    assert why["model"] == current["demand_model"] == "demand:v1"
    assert why["forecast_units"] == pytest.approx(current["expected_units_per_day"], rel=1e-3)
    product = why["base_units"] * math.prod(c["factor"] for c in why["top"]) * why["other_factor"]
    assert product == pytest.approx(why["forecast_units"], rel=1e-3)
    # the values shown are the row the forecast was made from
    row = demand_features(_text(SKU_ROWS[SKUS[3]]), current["price"], datetime.now(UTC))
    by_name = dict(zip(DEMAND_FEATURES, row, strict=True))
    for c in why["top"]:
        if c["feature"] != "weekday":
            assert c["value"] == pytest.approx(by_name[c["feature"]], rel=1e-6)
    assert {c["feature"] for c in why["top"]} >= {"price"}


def test_the_pricing_page_draws_the_served_explanation(
    client: TestClient, models_shop: Settings, page: Page
) -> None:
    """ "Why this forecast" on the pricing page: the model, and one row per top contribution
    with its value, its factor and a bar pointing up or down, as the pricing detail serves."""
    why = client.get(f"/pricing/{SKUS[3]}").json()["explanation"]
    settings = models_shop.model_copy(update={"api_port": free_port()})
    with serve_api(settings):
        page.goto(f"http://127.0.0.1:{settings.api_port}/pricing?sku={SKUS[3]}")
        expect(page.locator("#why-summary")).to_contain_text(
            f"{why['model']}: {why['base_units']:.2f} units/day"
        )
        rows = page.locator("#why tr")
        expect(rows).to_have_count(len(why["top"]))
        for row, c in zip(rows.all(), why["top"], strict=True):
            expect(row.locator("th")).to_contain_text(f"{c['feature']} = ")
            expect(row.locator("td").first).to_have_text(f"×{c['factor']:.3f}")
            direction = "up" if c["contribution"] >= 0 else "down"
            expect(row.locator(f".why-bar span.{direction}")).to_have_count(1)


def test_the_explanation_follows_a_promotion(client: TestClient, models_shop: Settings) -> None:
    label = _register(models_shop, 2)
    assert _eventually(
        lambda: client.get(f"/pricing/{SKUS[2]}").json()["explanation"]["model"] == label
    )
    body = client.get(f"/pricing/{SKUS[2]}").json()
    assert body["current"]["demand_model"] == label
    assert body["explanation"]["forecast_units"] == pytest.approx(
        body["current"]["expected_units_per_day"], rel=1e-3
    )
