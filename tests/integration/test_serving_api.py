"""Prices, recommendations and their websockets, served from the real Redis the flows write.

Redis is filled by the flows' own sinks (PriceWriter, RecommendationWriter, ItemGraphWriter),
so these tests exercise the same key layout and pub/sub messages as production.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote, urlparse

import orjson
import pytest
from fastapi.testclient import TestClient
from starlette.requests import HTTPConnection

from api.deps import get_prices, get_recommender
from api.main import create_app
from api.prices import PriceService
from api.recommendations import RecommendationService
from api.tokens import issue_token
from flows.catalogue import store_catalogue
from flows.sinks.prices import PriceWriter
from flows.sinks.serving import ItemGraphWriter, RecommendationWriter
from infra.stack.topics import delete_topics, ensure_topics
from online_models.pricer import PriceChange
from schemas.catalogue import CatalogueItem
from schemas.serving import PriceView
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS
from tests.credentials import admin_headers, bearer
from tests.flow_processes import isolated_settings
from tests.shoppers import viewed
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

A, B, C = "SKU-A1", "SKU-B2", "SKU-C3"
CATEGORIES = {A: "tea", B: "tea", C: "coffee"}


@pytest.fixture(scope="module")
def shop(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = isolated_settings(
        stack,
        "serve",
        tmp_path_factory.mktemp("serve"),
        api_cache_ttl_s=30.0,  # long: the tests prove pub/sub invalidates it
    )
    ensure_topics(settings)  # the price writer's price-updates, the served lists' log
    store_catalogue(
        settings,
        [
            CatalogueItem(sku=A, category=CATEGORIES[A], list_price=10.0, unit_cost=4.0),
            CatalogueItem(sku=B, category=CATEGORIES[B], list_price=20.0, unit_cost=8.0),
            CatalogueItem(sku=C, category=CATEGORIES[C], list_price=5.0, unit_cost=2.0),
        ],
    )
    graph = ItemGraphWriter(settings)
    graph.write_batch(
        [
            (A, [(B, 3.0), (C, 1.0)]),
            (B, [(A, 3.0)]),
            (A, ("tea", 5.0)),
            (B, ("tea", 4.0)),
            (C, ("coffee", 9.0)),
        ]
    )
    graph.close()
    try:
        yield settings
    finally:
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])


@pytest.fixture(scope="module")
def client(shop: Settings) -> Iterator[TestClient]:
    """An admin (``admin:read``): it may read every shopper's recommendations."""
    with TestClient(create_app(shop), headers=admin_headers(shop)) as c:
        yield c


def change(sku: str, price: float, previous: float, seq: int = 1) -> PriceChange:
    return PriceChange(
        sku=sku,
        price=price,
        previous_price=previous,
        reason="test",
        model_version="pricer:test",
        t=time.time(),
        sequence=seq,
    )


def publish(settings: Settings, *changes: PriceChange) -> None:
    writer = PriceWriter(settings)
    writer.write_batch(list(changes))
    writer.close()


@pytest.mark.cluster
def test_a_product_without_changes_is_served_at_its_list_price(client: TestClient) -> None:
    body = client.get(f"/prices/{C}").json()
    assert body["price"] == 5.0
    assert body["previous_price"] is None
    assert body["stale"] is False
    assert "list price" in body["reason"]


@pytest.mark.cluster
def test_unknown_and_malformed_skus(client: TestClient) -> None:
    missing = client.get("/prices/SKU-NOPE")
    assert missing.status_code == 404
    assert "SKU-NOPE" in missing.json()["detail"]
    assert client.get("/prices/bad%01sku").status_code == 422  # a control character
    assert client.get(f"/prices/{'x' * 129}").status_code == 422  # longer than an id
    several = client.get("/prices", params={"skus": f"{A},SKU-NOPE,{C}"}).json()
    assert set(several) == {A, C}
    too_many = client.get("/prices", params={"skus": ",".join(f"S{i}" for i in range(201))})
    assert too_many.status_code == 422
    assert "at most 200" in too_many.json()["detail"]


@pytest.mark.cluster
def test_a_price_change_is_pushed_and_then_served(shop: Settings, client: TestClient) -> None:
    assert client.get(f"/prices/{A}").json()["price"] == 10.0  # now cached for 30 s
    with client.websocket_connect(f"/ws/prices?sku={A}") as ws:
        publish(shop, change(B, 21.0, 20.0), change(A, 10.9, 10.0))
        pushed = orjson.loads(ws.receive_text())
    assert pushed["sku"] == A  # B's change was filtered out for this client
    assert pushed["price"] == 10.9
    served = client.get(f"/prices/{A}").json()  # the push invalidated the cached entry
    assert served["price"] == 10.9
    assert served["previous_price"] == 10.0
    assert served["model_version"] == "pricer:test"
    assert client.get(f"/prices/{B}").json()["price"] == 21.0


@pytest.mark.cluster
def test_the_pushed_price_is_the_view_the_route_serves(shop: Settings, client: TestClient) -> None:
    with client.websocket_connect(f"/ws/prices?sku={C}") as ws:
        publish(shop, change(C, 5.2, 5.0, 5))
        pushed = PriceView.model_validate_json(ws.receive_text())
    served = PriceView.model_validate(client.get(f"/prices/{C}").json())
    assert pushed == served
    assert (pushed.price, pushed.previous_price, pushed.reason) == (5.2, 5.0, "test")


@pytest.mark.cluster
def test_every_change_reaches_an_unfiltered_client(shop: Settings, client: TestClient) -> None:
    with client.websocket_connect("/ws/prices") as ws:
        publish(shop, change(B, 22.0, 21.0, 2), change(C, 5.5, 5.0, 2))
        got = [orjson.loads(ws.receive_text())["sku"] for _ in range(2)]
    assert got == [B, C]


@pytest.mark.cluster
def test_new_shoppers_get_the_popularity_list(client: TestClient) -> None:
    body = client.get("/recommendations/u-new", params={"k": 2}).json()
    assert body["source"] == "popularity"
    assert [i["sku"] for i in body["items"]] == [C, A]
    assert client.get("/recommendations/u-new", params={"k": 0}).status_code == 422
    assert client.get("/recommendations/bad%01user").status_code == 422


@pytest.mark.cluster
def test_a_new_shopper_gets_a_discover_list_after_the_first_view(
    shop: Settings, client: TestClient
) -> None:
    writer = RecommendationWriter(shop)
    with client.websocket_connect("/ws/recommendations/u-cold?list=discover") as ws:
        first = orjson.loads(ws.receive_text())
        assert (first["list"], first["source"]) == ("discover", "popularity")
        writer.write_batch([viewed("u-cold", [A], CATEGORIES)])  # one view of A, nothing else
        update = orjson.loads(ws.receive_text())
    writer.close()
    # A's neighbours (B, then C), never A itself: the shopper has just seen it.
    assert update["list"] == "discover"
    assert update["source"] == "streaming"
    assert [i["sku"] for i in update["items"]] == [B, C]
    again = client.get("/recommendations/u-cold", params={"list": "again"}).json()
    assert [i["sku"] for i in again["items"]] == [A]
    assert client.get("/recommendations/u-cold", params={"list": "other"}).status_code == 422


def test_a_first_view_without_neighbours_discovers_the_category(
    shop: Settings, client: TestClient
) -> None:
    writer = RecommendationWriter(shop)
    writer.write_batch([viewed("u-cat", [B], CATEGORIES)])  # B's neighbours: only A
    writer.write_batch([viewed("u-cat2", [C], CATEGORIES)])  # C has no neighbours at all
    writer.close()
    body = client.get("/recommendations/u-cat2", params={"list": "discover", "k": 2}).json()
    # nothing similar to C is known: the popular items the shopper has not seen
    assert C not in [i["sku"] for i in body["items"]]
    assert len(body["items"]) == 2
    body = client.get("/recommendations/u-cat", params={"list": "discover", "k": 1}).json()
    assert [i["sku"] for i in body["items"]] == [A]


def test_a_longer_list_than_the_cached_one_is_built_again(
    shop: Settings, client: TestClient
) -> None:
    """The discover list is built only as deep as an answer needs and cached; a later
    request for more items builds it deeper instead of topping the short one up."""
    near = [(f"SKU-N{i:02d}", float(40 - i)) for i in range(40)]  # not in the popularity list
    graph = ItemGraphWriter(shop)
    graph.write_batch([("SKU-N", near)])
    graph.close()
    writer = RecommendationWriter(shop)
    writer.write_batch([viewed("u-deep", ["SKU-N"], {"SKU-N": "unsold"})])
    writer.close()
    short = client.get("/recommendations/u-deep", params={"list": "discover", "k": 3}).json()
    assert [i["sku"] for i in short["items"]] == ["SKU-N00", "SKU-N01", "SKU-N02"]
    body = client.get("/recommendations/u-deep", params={"list": "discover", "k": 30}).json()
    assert [i["sku"] for i in body["items"]] == [s for s, _ in near[:30]]
    assert {i["source"] for i in body["items"]} == {"similar"}


@pytest.mark.cluster
def test_a_shoppers_list_follows_their_activity_live(shop: Settings, client: TestClient) -> None:
    writer = RecommendationWriter(shop)
    with client.websocket_connect("/ws/recommendations/u-live") as ws:
        first = orjson.loads(ws.receive_text())
        assert first["source"] == "popularity"  # not seen by the flows yet
        writer.write_batch([viewed("u-live", [A], CATEGORIES)])  # the shopper viewed A
        update = orjson.loads(ws.receive_text())
    writer.close()
    assert update["user_id"] == "u-live"
    assert update["source"] == "streaming"
    # A itself (the shopper's interest), then B: tea's other best seller and A's neighbour.
    assert [i["sku"] for i in update["items"]][:3] == [A, B, C]
    served = client.get("/recommendations/u-live").json()
    assert served["items"] == update["items"]


@pytest.mark.cluster
def test_metrics_count_requests_per_route_and_cache_hits(client: TestClient) -> None:
    client.get(f"/prices/{C}")
    client.get(f"/prices/{C}")
    text = client.get("/metrics").text
    counts = [
        line
        for line in text.splitlines()
        if line.startswith("tillflow_http_request_duration_seconds_count")
        and 'route="/prices/{sku}"' in line
        and 'status="200"' in line
    ]
    assert counts
    assert float(counts[0].split()[-1]) >= 2
    hits = [
        line
        for line in text.splitlines()
        if line.startswith('tillflow_serving_lookups_total{kind="price",result="hit"}')
    ]
    assert hits
    assert float(hits[0].split()[-1]) >= 1
    assert client.get("/healthz").headers["x-request-id"]
    assert client.get("/healthz", headers={"X-Request-ID": "abc"}).headers["x-request-id"] == "abc"


def test_a_price_is_answered_without_solving_the_routes_dependencies(shop: Settings) -> None:
    """A read from Redis and a cached answer both go past FastAPI's routing, with the
    route's bytes and statuses; only a sku the route's validation refuses reaches it."""
    app = create_app(shop)
    solved: list[str] = []

    async def counted(connection: HTTPConnection) -> PriceService:
        solved.append(connection.url.path)
        return await get_prices(connection)

    app.dependency_overrides[get_prices] = counted
    with TestClient(app) as c:
        first = c.get(f"/prices/{C}")  # a miss: read from Redis, then cached
        again = c.get(f"/prices/{C}")  # a hit: the cached bytes
        assert solved == []
        assert again.content == first.content
        assert PriceView.model_validate_json(first.content).sku == C
        assert again.headers["content-type"] == "application/json"
        assert again.headers["x-request-id"]
        unknown = c.get("/prices/SKU-NOPE")
        assert unknown.status_code == 404
        assert unknown.json() == {"detail": "unknown sku 'SKU-NOPE'"}
        assert c.get("/prices/bad%01sku").status_code == 422
        assert solved == ["/prices/bad\x01sku"]  # the route's validation answered it
        metrics = c.get("/metrics").text
    assert _ok_requests(metrics, "/prices/{sku}") == 2
    counted = 'tillflow_http_requests_total{method="GET",route="/prices/{sku}",status="404"}'
    assert counted in metrics


def test_a_list_is_sent_before_routing_and_kept_while_its_inputs_are_fresh(
    shop: Settings,
) -> None:
    """A list read for a plain query string and a list answered again are the route's own
    bytes, sent without solving the route's dependencies; the caller is still checked, any
    other query string goes to the route, and a change of the shopper's lists (pub/sub)
    makes the next request read the new lists."""
    app = create_app(shop)
    solved: list[str] = []

    async def counted(connection: HTTPConnection) -> RecommendationService:
        if connection.url.path.startswith("/recommendations/"):
            solved.append(connection.url.query)
        return await get_recommender(connection)

    app.dependency_overrides[get_recommender] = counted
    writer = RecommendationWriter(shop)
    writer.write_batch([viewed("u-kept", [A], CATEGORIES)])
    other, _ = issue_token(shop, "shopper", "u-other", [], now=time.time())
    own, _ = issue_token(shop, "shopper", "u-kept", [], now=time.time())
    with TestClient(app, headers=admin_headers(shop)) as c:
        first = c.get("/recommendations/u-kept?k=2")  # read before routing, kept
        again = c.get("/recommendations/u-kept?k=2")  # the kept answer
        assert solved == []
        assert again.content == first.content
        assert again.headers["content-type"] == "application/json"
        routed = c.get("/recommendations/u-kept?k=2&k=2")  # not a plain query: the route's
        assert solved == ["k=2&k=2"]
        assert routed.content == first.content
        assert c.get("/recommendations/u-kept?k=2", headers=bearer(own)).content == first.content
        assert c.get("/recommendations/u-kept?k=2", headers=bearer(other)).status_code == 403
        anonymous = c.get("/recommendations/u-kept?k=2", headers={"Authorization": ""})
        assert anonymous.status_code == 401
        assert c.get("/recommendations/u-kept?k=3").status_code == 200  # another query string
        assert c.get("/recommendations/u-kept?k=51").status_code == 422
        # the refused callers and the invalid k went to the route
        assert solved == ["k=2&k=2", "k=2", "k=2", "k=51"]
        # Another shopper's websocket tells when the listener has handled both changes, in
        # the order published (a websocket of u-kept would read them again itself).
        with c.websocket_connect("/ws/recommendations/u-sync") as ws:
            ws.receive_text()
            writer.write_batch(
                [viewed("u-kept", [A, C], CATEGORIES), viewed("u-sync", [B], CATEGORIES)]
            )
            ws.receive_text()
        changed = c.get("/recommendations/u-kept?k=2")
        assert len(solved) == 4
        assert changed.json()["updated_at"] != first.json()["updated_at"]
        metrics = c.get("/metrics").text
    writer.close()
    assert _ok_requests(metrics, "/recommendations/{user_id}") == 6


@pytest.mark.cluster
def test_rate_limit_answers_429_with_retry_after(shop: Settings) -> None:
    limited = shop.model_copy(update={"rate_limit_per_s": 1.0, "rate_limit_burst": 2})
    with TestClient(create_app(limited)) as c:
        codes = [c.get(f"/prices/{C}").status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        refused = c.get(f"/prices/{C}")
        assert refused.headers["retry-after"] == "1"
        assert "rate limit" in refused.json()["detail"]
        assert c.get("/healthz").status_code == 200  # not a public data route


def test_a_redis_outage_serves_last_known_values_or_503(shop: Settings) -> None:
    url = urlparse(shop.redis_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 6379)
    via_proxy = shop.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{proxy.port}/0", "api_cache_ttl_s": 0.0}
    )
    try:
        with TestClient(create_app(via_proxy), headers=admin_headers(via_proxy)) as c:
            assert c.get(f"/prices/{A}").json()["stale"] is False
            assert c.get("/recommendations/u-new").json()["stale"] is False
            proxy.cut()
            started = time.monotonic()
            price = c.get(f"/prices/{A}")
            assert price.status_code == 200
            assert price.json()["stale"] is True
            recs = c.get("/recommendations/u-new")
            assert recs.json()["stale"] is True
            never_seen = c.get(f"/prices/{B}")
            assert never_seen.status_code == 503
            assert never_seen.json()["service"] == "Redis"
            assert "Redis is not reachable" in never_seen.json()["detail"]
            assert time.monotonic() - started < 10  # bounded waits, not a hang
            ready = c.get("/readyz")
            assert ready.status_code == 503
            assert "Redis" in ready.json()["checks"]["redis"]
    finally:
        proxy.close()


# Ids the contract accepts (no control characters, at most 128 characters) with a space, an
# accent, a slash and a hash: every route must answer for them as for any other id.
ODD_SKU = "Thé vert 20/boîte #3"
ODD_USER = "anna maria/é@shop"


@pytest.mark.cluster
def test_any_id_the_contract_accepts_is_queryable(shop: Settings, client: TestClient) -> None:
    store_catalogue(
        shop, [CatalogueItem(sku=ODD_SKU, category="tea", list_price=3.0, unit_cost=1.0)]
    )
    path = quote(ODD_SKU, safe="")
    assert client.get(f"/prices/{path}").json()["price"] == 3.0
    publish(shop, change(ODD_SKU, 3.3, 3.0))
    served = client.get(f"/prices/{path}").json()
    assert (served["sku"], served["price"]) == (ODD_SKU, 3.3)
    several = client.get("/prices", params={"skus": f"{ODD_SKU},{A}"}).json()
    assert set(several) == {ODD_SKU, A}
    assert client.get(f"/pricing/{path}").json()["current"]["price"] == 3.3
    unknown = client.get(f"/graph/products/{path}/related")  # not in the graph (Neo4j says)
    assert (unknown.status_code, unknown.json()["detail"]) == (
        404,
        f"product {ODD_SKU!r} is not in the graph",
    )
    user = quote(ODD_USER, safe="")
    listed = client.get(f"/recommendations/{user}").json()
    assert (listed["user_id"], listed["source"]) == (ODD_USER, "popularity")
    with client.websocket_connect(f"/ws/recommendations/{user}") as ws:
        assert orjson.loads(ws.receive_text())["user_id"] == ODD_USER


@pytest.mark.cluster
def test_products_read_the_catalogue_again_only_when_it_changes(
    shop: Settings, client: TestClient
) -> None:
    service = client.app.state.tillflow.catalogue_service  # type: ignore[attr-defined]
    first = client.get("/products", params={"limit": 1000}).json()
    reads = service.reads
    assert client.get("/products", params={"limit": 1000}).json() == first
    assert service.reads == reads  # served from memory: no catalogue read per request
    heard = threading.Event()
    client.app.state.tillflow.hub.on_catalogue.append(heard.set)  # type: ignore[attr-defined]
    added = CatalogueItem(sku="SKU-NEW9", category="coffee", list_price=7.0, unit_cost=3.0)
    store_catalogue(shop, [added])
    assert heard.wait(timeout=10), "the catalogue change was never announced"
    after = client.get("/products", params={"limit": 1000}).json()
    assert service.reads == reads + 1
    assert {
        "sku": "SKU-NEW9",
        "name": None,
        "category": "coffee",
        "list_price": 7.0,
        "price": 7.0,
    } in after
    assert len(after) == len(first) + 1


def _ok_requests(metrics: str, route: str) -> float:
    """The count of 200 answers of ``route`` in the API's Prometheus text."""
    return next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("tillflow_http_requests_total")
        and f'route="{route}"' in line
        and 'status="200"' in line
    )


def test_buy_again_puts_the_likelier_purchase_first(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Of the shopper's own items, one everybody buys comes before one they looked at more
    but few buy (online_models.recommender.likely_again), in buy again and in the mixed list."""
    settings = isolated_settings(stack, "again", tmp_path_factory.mktemp("again"))
    rare, staple = "SKU-RARE", "SKU-STAPLE"
    categories = {rare: "pantry", staple: "pantry"}
    store_catalogue(
        settings,
        [
            CatalogueItem(sku=s, category=c, list_price=3.0, unit_cost=1.0)
            for s, c in categories.items()
        ],
    )
    graph = ItemGraphWriter(settings)
    # popularity scores are logs of decayed counts (online_models.popularity)
    graph.write_batch([(rare, ("pantry", math.log(1.0))), (staple, ("pantry", math.log(100.0)))])
    graph.close()
    writer = RecommendationWriter(settings)
    writer.write_batch([viewed("u-again", [rare, staple, rare], categories)])
    writer.close()
    with TestClient(create_app(settings), headers=admin_headers(settings)) as c:
        again = c.get("/recommendations/u-again", params={"list": "again"}).json()
        mixed = c.get("/recommendations/u-again", params={"k": 2}).json()
    # the shopper's share of the rare item is twice the staple's; the staple sells 100×
    assert [i["sku"] for i in again["items"]] == [staple, rare]
    assert [i["sku"] for i in mixed["items"]] == [staple, rare]
