"""The API serves with the registry's ONNX models and follows promotions without a restart.

The models here are small scikit-learn models exported with skl2onnx, logged and registered in
the real MLflow server; the batch tests cover the production training. What is checked is that
the API feeds them exactly the rows training would (online_models.demand_features / ranking) and
reloads when the ``champion`` alias moves.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression, LogisticRegression

from api.discover import Popularity, profile_of, read_discover
from api.main import create_app
from api.onnx_models import ModelSlot
from api.recommendations import CANDIDATES_MAX
from benchmarks.recs_ranker import SERVED_DEPTH, ranked_lists
from featurestore.repo import BATCH_SKU_VIEW, SKU_VIEW, USER_VIEW, apply
from flows.catalogue import store_catalogue
from flows.sinks.serving import ItemGraphWriter, RecommendationWriter
from online_models.candidate_signals import SIGNAL_FEATURES, candidate_signals
from online_models.demand_features import DEMAND_FEATURES, demand_features
from online_models.popularity import counts
from online_models.ranking import RANKER_FEATURES, ranker_features
from online_models.recommender import CATEGORY_ITEMS, DISCOVER_DEPTH, Candidate, mixed
from online_models.similarity import POPULARITY_DAMPING, damped
from registry import CHAMPION, ModelRegistry
from schemas.catalogue import CatalogueItem
from schemas.features import BATCH_SKU_FEATURES, SKU_FEATURES, USER_FEATURES, stored_in
from schemas.keys import RedisKeys
from schemas.serving import StoredShopper
from schemas.settings import Settings
from search.client import opensearch_client
from search.indexer import Indexer
from tests.credentials import admin_headers
from tests.registered import model_prefix, register_onnx
from tests.shoppers import viewed

pytestmark = pytest.mark.integration

SKUS = [f"SKU-M{i}" for i in range(8)]
CATEGORIES = {s: "tea" if i % 2 else "coffee" for i, s in enumerate(SKUS)}
_EMPTY = {"int": 0, "float": 0.0, "string": "", "json": ""}
SKU_ROWS = {
    sku: {f.name: _EMPTY[f.dtype] for f in stored_in(SKU_FEATURES, "feast")}
    | {
        "units_24h": 3 + i,
        "views_24h": 40 + 5 * i,
        "last_price": 10.0 + i,
        "min_competitor_price": 11.0,
        "on_hand": 50 * i,
        "conversion_24h": 0.1,
        "add_to_carts_24h": i,
    }
    for i, sku in enumerate(SKUS)
}
USER_ROW = {f.name: _EMPTY[f.dtype] for f in USER_FEATURES} | {
    "recent_views": f'["{SKUS[1]}", "{SKUS[2]}"]',
    "recent_purchases": "[]",
    "category_affinity": '{"tea": 0.8, "coffee": 0.2}',
}


def _text(row: dict[str, object]) -> dict[str, str]:
    """Feature values as the row builders read them (the form the API decodes to)."""
    return {k: str(v) for k, v in row.items()}


def _register(settings: Settings, name: str, model: object, features: tuple[str, ...]) -> int:
    onx = to_onnx(
        model,
        np.zeros((1, len(features)), dtype=np.float32),
        target_opset=17,
        options={id(model): {"zipmap": False}} if name == "ranker" else None,
    )
    return register_onnx(settings, name, onx.SerializeToString(), features).version


@pytest.fixture(scope="module")
def models_shop(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = stack.model_copy(
        update={
            "redis_prefix": f"{stack.redis_prefix}models{uuid.uuid4().hex[:6]}:",
            "registry_dir": Path(tmp_path_factory.mktemp("registry")),
            "mlflow_model_prefix": model_prefix(),
            "rate_limit_per_s": 0.0,
            "model_poll_s": 0.2,
            "search_index": f"test-models{uuid.uuid4().hex[:6]}-products",
        }
    )
    store_catalogue(
        settings,
        [
            CatalogueItem(sku=s, category=CATEGORIES[s], list_price=10.0 + i, unit_cost=4.0)
            for i, s in enumerate(SKUS)
        ],
    )
    # The model features are written by Feast itself, so the API's reading of Feast's layout
    # is checked against Feast's writing, not against tillflow's own encoder.
    store = apply(settings)
    now = datetime.now(UTC)
    store.write_to_online_store(
        SKU_VIEW,
        pd.DataFrame(
            [{**row, "sku": sku, "event_timestamp": now} for sku, row in SKU_ROWS.items()]
        ),
    )
    store.write_to_online_store(
        USER_VIEW,
        pd.DataFrame(
            [{**USER_ROW, "user_id": u, "event_timestamp": now} for u in ("u-1", "u-features")]
        ),
    )
    graph = ItemGraphWriter(settings)
    graph.write_batch(
        [(SKUS[1], [(s, 1.0 + i) for i, s in enumerate(SKUS[2:])])]
        + [(s, (CATEGORIES[s], float(i))) for i, s in enumerate(SKUS)]
    )
    graph.close()
    writer = RecommendationWriter(settings)
    writer.write_batch([viewed("u-1", [SKUS[1]], CATEGORIES)])
    writer.close()
    return settings


@pytest.fixture(scope="module")
def trained(models_shop: Settings) -> tuple[LinearRegression, LogisticRegression]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, len(DEMAND_FEATURES))).astype(np.float32)
    demand = LinearRegression().fit(x, x @ rng.normal(size=len(DEMAND_FEATURES)) + 5)
    # Wide inputs give small weights, so the served rows' scores stay apart (no saturation).
    xr = rng.normal(scale=20.0, size=(300, len(RANKER_FEATURES))).astype(np.float32)
    ranker = LogisticRegression().fit(xr, (xr[:, 2] + xr[:, 11] > 0).astype(int))
    _register(models_shop, "demand", demand, DEMAND_FEATURES)
    _register(models_shop, "ranker", ranker, RANKER_FEATURES)
    return demand, ranker


@pytest.fixture(scope="module")
def client(models_shop: Settings, trained: object) -> Iterator[TestClient]:
    with TestClient(create_app(models_shop), headers=admin_headers(models_shop)) as c:
        yield c


def test_prices_carry_the_demand_models_forecast(
    client: TestClient, models_shop: Settings, trained: tuple[LinearRegression, object]
) -> None:
    body = client.get(f"/prices/{SKUS[3]}").json()
    assert body["demand_model"] == "demand:v1"
    row = demand_features(_text(SKU_ROWS[SKUS[3]]), body["price"], datetime.now(UTC))
    native = float(trained[0].predict(np.array([row], dtype=np.float32))[0])
    assert body["expected_units_per_day"] == pytest.approx(max(0.0, native), abs=1e-3)


@pytest.mark.parametrize("name", ["discover", "again", "mixed"])
def test_the_ranker_orders_each_list_of_a_known_shopper(
    client: TestClient,
    models_shop: Settings,
    trained: tuple[object, LogisticRegression],
    name: str,
) -> None:
    body = client.get("/recommendations/u-1", params={"k": 5, "list": name}).json()
    assert body["source"] == "ranker"
    assert body["list"] == name
    assert body["model_version"] == "ranker:v1"
    # Rebuild the list's candidate pool (stored list(s), then popular items the shopper does
    # not buy again) and score it with the native model on rows from
    # online_models.ranking.ranker_features, the training path.
    r = redis.Redis.from_url(models_shop.redis_url, decode_responses=True)
    keys = models_shop.keys
    stored = StoredShopper.model_validate_json(r.get(keys.recommendations("u-1")) or "")
    own = {i.sku: i.score for i in stored.again}
    candidates = asyncio.run(_discover(models_shop, stored))
    found = {sku: score for sku, score, _ in candidates}
    sources = {sku: source for sku, _, source in candidates} | dict.fromkeys(own, "again")
    assert own
    assert found
    assert not set(own) & set(found)  # discover holds only items the shopper has not touched
    pool = dict(own) if name == "again" else dict(found) if name == "discover" else {}
    if name == "mixed":  # buy again first, then discover, 20 deep (depth_for(5))
        pool = dict(mixed(list(own.items()), list(found.items()), 20))
    if name != "again":
        for sku, score in _popularity(r, keys).ranked:
            if len(pool) >= 20:
                break
            if sku not in own:
                pool.setdefault(sku, score)
    pool = dict(list(pool.items())[:20])
    signals = _signals(r, keys, stored, list(pool))
    user = _text(USER_ROW)
    rows = []
    for rank, (sku, score) in enumerate(pool.items()):
        item = _text(SKU_ROWS[sku])
        category = json.loads(r.hget(keys.catalogue, sku) or "{}").get("category")
        source = sources.get(sku, "popular")  # the rest of the pool: popular items
        rows.append(ranker_features(user, item, score, rank, category, sku, source, signals[sku]))
    r.close()
    links = [v[SIGNAL_FEATURES.index("history_links")] for v in signals.values()]
    assert any(links) == (name != "again")  # the viewed item's neighbours are discover's
    native = trained[1].predict_proba(np.array(rows, dtype=np.float32))[:, 1]
    ordered = [
        (sku, float(p)) for sku, p in sorted(zip(pool, native, strict=True), key=lambda p: -p[1])
    ]
    if name == "mixed":
        expected = mixed(
            [p for p in ordered if p[0] in own], [p for p in ordered if p[0] not in own], 5
        )
    else:
        expected = ordered[:5]
    assert [i["sku"] for i in body["items"]] == [sku for sku, _ in expected]
    assert [i["source"] for i in body["items"]] == [
        sources.get(sku, "popular") for sku, _ in expected
    ]
    assert [i["score"] for i in body["items"]] == pytest.approx([p for _, p in expected], abs=1e-4)
    new = client.get("/recommendations/u-unknown", params={"list": name}).json()
    assert new["source"] == "popularity"
    assert (new["items"] == []) == (name == "again")


def test_the_rankers_categories_follow_a_catalogue_change(
    client: TestClient, models_shop: Settings
) -> None:
    """A candidate's category (one of the ranker's inputs) comes from the catalogue the API
    holds in memory, which follows every announced change: once the item is read again, its
    row carries the category the catalogue says now."""
    state = client.app.state.tillflow  # type: ignore[attr-defined]
    body = client.get("/recommendations/u-1", params={"k": 5, "list": "discover"}).json()
    sku = body["items"][0]["sku"]
    assert state.items.last(sku).category == CATEGORIES[sku]
    heard = threading.Event()
    state.hub.on_catalogue.append(heard.set)
    moved = "tea" if CATEGORIES[sku] == "coffee" else "coffee"
    i = SKUS.index(sku)
    item = CatalogueItem(sku=sku, category=moved, list_price=10.0 + i, unit_cost=4.0)
    try:
        store_catalogue(models_shop, [item])
        assert heard.wait(timeout=10), "the catalogue change was never announced"
        state.items.invalidate(sku)  # as when the cache interval has passed
        state.shoppers.invalidate("u-1")
        client.get("/recommendations/u-1", params={"k": 5, "list": "discover"})
        assert state.items.last(sku).category == moved
    finally:
        heard.clear()
        store_catalogue(models_shop, [item.model_copy(update={"category": CATEGORIES[sku]})])
        assert heard.wait(timeout=10)
        state.hub.on_catalogue.remove(heard.set)
        state.items.invalidate(sku)
        state.shoppers.invalidate("u-1")


def test_the_recs_benchmark_ranks_discover_as_the_api_serves_it(
    client: TestClient, models_shop: Settings, trained: object
) -> None:
    """benchmarks/recs.py scores the ranked discover list through the API's own reads and
    re-ranking (``benchmarks.recs_ranker.ranked_lists``): the same items, in the same order,
    as ``GET /recommendations`` answers with the same ranker loaded."""
    body = client.get("/recommendations/u-1", params={"k": 10, "list": "discover"}).json()
    slot = ModelSlot(ModelRegistry.from_settings(models_shop), "ranker")
    slot.refresh()
    assert slot.model is not None
    assert body["source"] == "ranker"
    assert body["model_version"] == slot.model.label
    measured = asyncio.run(ranked_lists(models_shop, ["u-1"], slot.model, SERVED_DEPTH))
    assert measured["u-1"] == [i["sku"] for i in body["items"]]
    assert len(measured["u-1"]) == len(SKUS) - 1  # every product but the one viewed, ranked


def test_search_for_a_shopper_blends_in_the_rankers_score(
    client: TestClient, models_shop: Settings, trained: tuple[object, LogisticRegression]
) -> None:
    indexer, stop = Indexer(models_shop), threading.Event()
    worker = threading.Thread(target=indexer.run, args=(stop,), daemon=True)
    worker.start()
    try:
        assert indexer.wait_for(lambda: indexer.indexed >= len(SKUS), 120), "not indexed"
    finally:
        stop.set()
        worker.join(30)
    with opensearch_client(models_shop) as os_client:
        os_client.indices.refresh(index=models_shop.search_index)
        plain = client.get("/search", params={"category": "tea"}).json()
        body = client.get(
            "/search", params={"category": "tea", "user": "u-1"}, headers=admin_headers(models_shop)
        ).json()
        # The re-ranking reads the shopper's features only: a shopper with the same features
        # whose stored lists are unreadable (never parsed) gets the same page.
        r = redis.Redis.from_url(models_shop.redis_url)
        r.set(models_shop.keys.recommendations("u-features"), b"not a stored shopper")
        r.close()
        same = client.get(
            "/search",
            params={"category": "tea", "user": "u-features"},
            headers=admin_headers(models_shop),
        ).json()
        os_client.indices.delete(index=models_shop.search_index)
    assert same["items"] == body["items"]
    assert plain["ranked_by"] == "search"
    assert (body["ranked_by"], body["model_version"]) == ("search+ranker", "ranker:v1")
    # The ranker's rows as training builds them: the search score (scaled to the page's best)
    # and rank take the candidate list's place.
    best = max(h["score"] for h in plain["items"])
    rows = [
        ranker_features(
            _text(USER_ROW),
            _text(SKU_ROWS[h["sku"]]),
            h["score"] / best,
            rank,
            CATEGORIES[h["sku"]],
            sku=h["sku"],
        )
        for rank, h in enumerate(plain["items"])
    ]
    native = trained[1].predict_proba(np.array(rows, dtype=np.float32))[:, 1]
    expected = sorted(
        (
            (h["sku"], h["score"] / best + models_shop.search_personal_weight * p, p)
            for h, p in zip(plain["items"], native, strict=True)
        ),
        key=lambda e: -e[1],
    )
    assert [h["sku"] for h in body["items"]] == [sku for sku, _, _ in expected]
    assert [h["personal_score"] for h in body["items"]] == pytest.approx(
        [float(p) for _, _, p in expected], abs=1e-4
    )
    assert len(body["items"]) == 4


def _eventually(check: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_promotion_is_picked_up_without_restart(
    client: TestClient, models_shop: Settings, trained: tuple[LinearRegression, object]
) -> None:
    registry = ModelRegistry.from_settings(models_shop)
    _register(models_shop, "demand", trained[0], DEMAND_FEATURES)  # v2, promoted
    v2_info = 'tillflow_model_info{model="demand",version="demand:v2"} 1.0'
    assert _eventually(
        lambda: (
            client.get("/readyz").json()["checks"]["model:demand"] == "ok (demand:v2)"
            and v2_info in client.get("/metrics").text
        )
    )
    registry.rollback("demand")
    assert registry.alias("demand", CHAMPION) == 1
    assert _eventually(
        lambda: client.get(f"/prices/{SKUS[2]}").json()["demand_model"] == "demand:v1"
    )
    assert _eventually(lambda: v2_info not in client.get("/metrics").text)


def test_forecasts_use_the_feast_batch_averages_like_training(
    client: TestClient, models_shop: Settings, trained: tuple[LinearRegression, object]
) -> None:
    store = apply(models_shop)
    row = {f.name: 0 if f.dtype == "int" else 0.0 for f in BATCH_SKU_FEATURES}
    row |= {"units_per_day_7d": 42.0, "views_per_day_7d": 400.0, "units_per_day_28d": 30.0}
    store.write_to_online_store(
        BATCH_SKU_VIEW,
        pd.DataFrame([{**row, "sku": SKUS[4], "event_timestamp": datetime.now(UTC)}]),
    )
    body = client.get(f"/prices/{SKUS[4]}").json()
    both = _text(SKU_ROWS[SKUS[4]]) | _text(row)
    row_served = demand_features(both, body["price"], datetime.now(UTC))
    assert row_served[DEMAND_FEATURES.index("units_per_day_7d")] == 42.0
    native = float(trained[0].predict(np.array([row_served], dtype=np.float32))[0])
    assert body["expected_units_per_day"] == pytest.approx(max(0.0, native), abs=1e-3)


def _signals(
    r: redis.Redis, keys: RedisKeys, stored: StoredShopper, skus: list[str]
) -> dict[str, tuple[float, ...]]:
    """What the discover sources say of each of ``skus``, from the neighbours, best sellers
    and popularity read here (each neighbour damped by its popularity, as the list ranks;
    every count relative to the least popular kept, as the API counts them)."""
    popularity = _popularity(r, keys)
    near = {
        sku: damped(
            {n: float(w) for n, w in r.hgetall(keys.neighbours(sku)).items()},
            popularity.scores,
            POPULARITY_DAMPING,
        )
        for sku in stored.recent[:DISCOVER_DEPTH]
    }
    best = {
        c: list(
            counts(
                {
                    s: float(v)
                    for s, v in r.zrevrange(
                        keys.category_popularity(c), 0, CATEGORY_ITEMS - 1, withscores=True
                    )
                },
                popularity.reference,
            ).items()
        )
        for c, _ in stored.categories
    }
    return candidate_signals(profile_of(stored), best, near, popularity.scores, skus)


def _popularity(r: redis.Redis, keys: RedisKeys) -> Popularity:
    """The popularity list read here, counted as the API counts it."""
    return Popularity.of(
        [(s, float(v)) for s, v in r.zrevrange(keys.popularity, 0, -1, withscores=True)]
    )


async def _discover(settings: Settings, stored: StoredShopper) -> list[Candidate]:
    """The shopper's discover list as the API builds it (``api/discover.py``)."""
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        return await read_discover(client, settings.keys, stored, CANDIDATES_MAX)
    finally:
        await client.aclose()
