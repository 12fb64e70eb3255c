"""Product search against the real OpenSearch node, fed by the real stream.

The catalogue goes to Redis and prices to the ``price-updates`` topic, as in production; the
indexer (``search.indexer``) runs in a thread and the API in process. Each test run has its own
index, topics and Redis keys.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

import pytest
from confluent_kafka import Producer
from fastapi.testclient import TestClient

from api.main import create_app
from flows.catalogue import store_catalogue
from infra.errors import ServiceUnavailable
from infra.readiness import require_opensearch
from schemas.catalogue import CatalogueItem
from schemas.events import InventoryLevel, PriceUpdate
from schemas.settings import Settings
from schemas.topics import INVENTORY, PRICE_UPDATES
from search.client import ensure_product_index, opensearch_client
from search.documents import ALL_TEXT, index_body
from search.indexer import Indexer
from search.query import SearchQuery, search_body
from tests.credentials import admin_headers
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

PRODUCTS = [
    ("S-YOG", "dairy", 3.2, "Northfield Greek Yogurt", "Northfield", "Thick strained yogurt."),
    ("S-MLK", "dairy", 1.1, "Valley Farm Whole Milk", "Valley Farm", "Fresh whole milk."),
    ("S-CHD", "dairy", 6.5, "Redwood Aged Cheddar", "Redwood", "Sharp cheddar, aged a year."),
    ("S-ESP", "coffee", 12.0, "Kestrel Espresso Beans", "Kestrel", "Dark roasted beans."),
    ("S-CBR", "coffee", 4.5, "Zephyr Cold Brew", "Zephyr", "Smooth coffee, brewed cold."),
    ("S-ROS", "wine", 9.0, "Tidewell Rosé", "Tidewell", "A dry rosé from Provence."),
    ("S-CHR", "wine", 14.0, "Pioneer Chardonnay", "Pioneer", "Oaked white wine."),
]


def _items() -> list[CatalogueItem]:
    return [
        CatalogueItem(
            sku=sku,
            category=cat,
            list_price=price,
            unit_cost=price / 2,
            name=name,
            brand=brand,
            description=text,
        )
        for sku, cat, price, name, brand, text in PRODUCTS
    ]


@pytest.fixture(scope="module")
def shop(stack: Settings) -> Iterator[Settings]:
    try:
        require_opensearch(stack, timeout_s=5)
    except ServiceUnavailable as exc:
        pytest.fail(f"search tests need OpenSearch (`tillflow up`): {exc}", pytrace=False)
    rid = uuid.uuid4().hex[:6]
    settings = stack.model_copy(
        update={
            "redis_prefix": f"{stack.redis_prefix}search{rid}:",
            "search_index": f"test-{rid}-products",
            "rate_limit_per_s": 0.0,
        }
    )
    store_catalogue(settings, _items())
    yield settings
    with opensearch_client(settings) as client:
        client.indices.delete(index=settings.search_index, ignore_unavailable=True)


@pytest.fixture(scope="module")
def indexer(shop: Settings) -> Iterator[Indexer]:
    worker = Indexer(shop)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    assert worker.wait_for(lambda: worker.indexed >= len(PRODUCTS), 120), "catalogue not indexed"
    with opensearch_client(shop) as client:
        client.indices.refresh(index=shop.search_index)
    yield worker
    stop.set()
    thread.join(30)


@pytest.fixture(scope="module")
def api(shop: Settings, indexer: Indexer) -> Iterator[TestClient]:
    with TestClient(create_app(shop)) as client:
        yield client


def _search(api: TestClient, **params: Any) -> dict[str, Any]:
    response = api.get("/search", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _skus(body: dict[str, Any]) -> list[str]:
    return [hit["sku"] for hit in body["items"]]


@pytest.mark.parametrize(
    ("q", "best"),
    [
        ("greek yogurt", "S-YOG"),
        ("yoghurt", "S-YOG"),  # one letter too many
        ("chedar", "S-CHD"),  # one letter missing
        ("espreso beens", "S-ESP"),  # two typos
        ("rose", "S-ROS"),  # accent folded
        ("kestrel", "S-ESP"),  # brand
        ("provence", "S-ROS"),  # description
    ],
)
def test_typos_still_find_the_product(api: TestClient, q: str, best: str) -> None:
    body = _search(api, q=q)
    assert _skus(body)[0] == best
    assert body["items"][0]["title"] == dict((p[0], p[3]) for p in PRODUCTS)[best]


def test_category_filter_and_facets(api: TestClient) -> None:
    body = _search(api, category="dairy")
    assert sorted(_skus(body)) == ["S-CHD", "S-MLK", "S-YOG"]
    assert body["total"] == 3
    categories = {f["value"]: f["count"] for f in body["facets"]["categories"]}
    assert categories == {"dairy": 3, "coffee": 2, "wine": 2}  # the other categories stay
    prices = {b["key"]: b["count"] for b in body["facets"]["prices"]}
    assert prices == {"0-5": 2, "5-10": 1, "10-20": 0, "20-50": 0, "50-": 0}  # within dairy


def test_price_range_and_sort_by_price(api: TestClient) -> None:
    body = _search(api, min_price=4, max_price=12, sort="price")
    assert _skus(body) == ["S-CBR", "S-CHD", "S-ROS", "S-ESP"]
    assert [h["price"] for h in body["items"]] == [4.5, 6.5, 9.0, 12.0]
    categories = {f["value"]: f["count"] for f in body["facets"]["categories"]}
    assert categories == {"coffee": 2, "dairy": 1, "wine": 1}


def test_text_with_filters(api: TestClient) -> None:
    assert _skus(_search(api, q="coffee", category="coffee", max_price=5)) == ["S-CBR"]


def test_an_index_made_before_the_fuzzy_field_gains_it_when_the_catalogue_is_rewritten(
    shop: Settings,
) -> None:
    old = shop.model_copy(update={"search_index": f"{shop.search_index}-old"})
    body = index_body()
    properties = body["mappings"]["properties"]
    del properties[ALL_TEXT]
    for spec in properties.values():
        spec.pop("copy_to", None)
    query = search_body(SearchQuery(q="chedar"))

    def catalogue_written(client: Any) -> list[str]:
        indexer = Indexer(old)  # a (re)started indexer writes the whole catalogue
        indexer.poll_redis()
        assert indexer.flush(client) == len(PRODUCTS)
        client.indices.refresh(index=old.search_index)
        hits = client.search(index=old.search_index, body=query)["hits"]["hits"]
        return [hit["_source"]["sku"] for hit in hits]

    with opensearch_client(old) as client:
        client.indices.create(index=old.search_index, body=body)
        try:
            assert catalogue_written(client) == []  # nothing in the field the query expands
            assert ensure_product_index(client, old) is False
            assert catalogue_written(client)[:1] == ["S-CHD"]
        finally:
            client.indices.delete(index=old.search_index, ignore_unavailable=True)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_price": 9, "max_price": 3}, "min_price must not be above max_price"),
        ({"sort": "cheapest"}, "relevance"),
        ({"size": 0}, "greater than or equal to 1"),
        ({"q": "x" * 201}, "at most 200"),
        ({"offset": 9_999, "size": 2}, "offset + size must be at most 10000"),
    ],
)
def test_bad_parameters_are_refused(api: TestClient, params: dict[str, Any], message: str) -> None:
    response = api.get("/search", params=params)
    assert response.status_code == 422
    assert message in response.text


def test_personalising_for_a_shopper_needs_that_shoppers_session_or_an_admin(
    shop: Settings, api: TestClient
) -> None:
    params = {"q": "espresso", "user": "u-someone"}
    anonymous = api.get("/search", params=params)
    assert anonymous.status_code == 401, anonymous.text
    assert "session" in anonymous.json()["detail"]
    with TestClient(create_app(shop)) as browser:
        me = browser.post("/session").json()["user_id"]
        other = browser.get("/search", params=params)
        assert other.status_code == 403, other.text
        assert "another shopper" in other.json()["detail"]
        own = browser.get("/search", params={"q": "espresso", "user": me})
        assert own.status_code == 200, own.text
        assert "S-ESP" in _skus(own.json())
    admin = api.get("/search", params=params, headers=admin_headers(shop))
    assert admin.status_code == 200, admin.text
    assert _skus(admin.json()) == _skus(api.get("/search", params={"q": "espresso"}).json())


def test_search_is_rate_limited_like_the_other_public_routes(
    shop: Settings, indexer: Indexer
) -> None:
    # One token per 100 s: however slow a search is here, the bucket does not refill.
    limited = shop.model_copy(update={"rate_limit_per_s": 0.01, "rate_limit_burst": 2})
    with TestClient(create_app(limited)) as client:
        codes = [client.get("/search", params={"q": "milk"}).status_code for _ in range(3)]
        assert codes == [200, 200, 429]


def _publish(settings: Settings, sku: str, price: float, previous: float) -> None:
    event = PriceUpdate(
        event_id=uuid.uuid4().hex,
        event_time=datetime.now(UTC),
        sku=sku,
        price=Decimal(str(price)),
        previous_price=Decimal(str(previous)),
        reason="test",
        model_version="pricer:test",
    )
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(settings.topic(PRICE_UPDATES), event.model_dump_json().encode(), sku.encode())
    assert producer.flush(10) == 0


def test_a_published_price_reaches_search(
    shop: Settings, indexer: Indexer, api: TestClient
) -> None:
    _publish(shop, "S-MLK", 0.85, 1.1)
    assert indexer.wait_for(lambda: indexer.prices.get("S-MLK") == 0.85, 60), "price not indexed"
    with opensearch_client(shop) as client:
        client.indices.refresh(index=shop.search_index)
    body = _search(api, q="whole milk")
    assert body["items"][0]["sku"] == "S-MLK"
    assert body["items"][0]["price"] == 0.85
    assert body["items"][0]["list_price"] == 1.1
    assert "S-MLK" in _skus(_search(api, max_price=0.9))


def test_stock_is_the_sum_over_stores(shop: Settings, indexer: Indexer, api: TestClient) -> None:
    producer = Producer({"bootstrap.servers": shop.kafka_bootstrap})
    for store, units in (("s1", 4), ("s2", 7), ("s1", 2)):  # s1 reports twice: latest wins
        level = InventoryLevel(
            event_id=uuid.uuid4().hex,
            event_time=datetime.now(UTC),
            sku="S-CHR",
            store_id=store,
            on_hand=units,
        )
        producer.produce(shop.topic(INVENTORY), level.model_dump_json().encode(), b"S-CHR")
    assert producer.flush(10) == 0
    assert indexer.wait_for(lambda: indexer.on_hand.get("S-CHR") == 9, 60), "stock not indexed"
    with opensearch_client(shop) as client:
        client.indices.refresh(index=shop.search_index)
    assert _search(api, q="chardonnay")["items"][0]["on_hand"] == 9


def test_opensearch_down_is_a_503_naming_it_and_the_rest_keeps_serving(
    shop: Settings, indexer: Indexer
) -> None:
    url = urlparse(shop.opensearch_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 9200)
    via_proxy = shop.model_copy(update={"opensearch_url": f"http://127.0.0.1:{proxy.port}"})
    try:
        admin = admin_headers(via_proxy)  # readiness details are for admins
        with TestClient(create_app(via_proxy)) as client:
            assert client.get("/search", params={"q": "milk"}).status_code == 200
            assert client.get("/readyz", headers=admin).json()["checks"]["opensearch"] == "ok"
            proxy.cut()
            down = client.get("/search", params={"q": "milk"})
            assert down.status_code == 503
            assert down.json()["service"] == "OpenSearch"
            assert f"127.0.0.1:{proxy.port}" in down.json()["detail"]
            assert client.get("/products").status_code == 200
            ready = client.get("/readyz", headers=admin).json()
            assert "OpenSearch" in ready["checks"]["opensearch"]
    finally:
        proxy.close()
