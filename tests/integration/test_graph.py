"""The co-purchase graph against the real Neo4j: load, re-run, incremental update, queries, API.

Gold tables come from the simulator through ``tests.sample_gold.SampleGold`` (not the production
gold job). Expected values are recomputed here from the gold rows in plain Python.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import neo4j
import orjson
import pandas as pd
import pytest
from deltalake import DeltaTable
from fastapi.testclient import TestClient

from api.main import create_app
from graph import cypher
from graph.copurchase import MIN_SUPPORT
from graph.load import drop_namespace, load_graph
from graph.queries import WARM_UP, candidates, related_lists, warm_up
from graph.serving import GraphService
from infra.clients import neo4j_driver, redis_client
from infra.errors import ServiceUnavailable
from infra.readiness import require_neo4j
from schemas.lake import ORDERS_ENRICHED, USER_ITEM_INTERACTIONS, gold_path
from schemas.settings import Settings
from simulator.config import ShopConfig
from simulator.shop import DAY, Shop
from tests.flow_processes import free_port
from tests.sample_gold import SampleGold
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

CONFIG = ShopConfig(products=80, shoppers=400, sessions_per_day=3_000)


def graph_settings(settings: Settings, lake: Path, name: str) -> Settings:
    ns = f"{settings.redis_prefix.rstrip(':')}-{name}"
    return settings.model_copy(update={"graph_namespace": ns, "lake_dir": lake})


@pytest.fixture(scope="module")
def driver(settings: Settings) -> Iterator[neo4j.Driver]:
    try:
        require_neo4j(settings, timeout_s=10)
    except ServiceUnavailable as exc:
        pytest.fail(f"graph tests need the local Neo4j (`tillflow up`): {exc}", pytrace=False)
    with neo4j_driver(settings) as d:
        yield d
        records, _, _ = d.execute_query(
            "MATCH (l:LoadState) WHERE l.ns STARTS WITH $prefix RETURN DISTINCT l.ns AS ns",
            prefix=settings.redis_prefix.rstrip(":"),
        )
        for record in records:
            drop_namespace(d, record["ns"])


class Lake:
    """A shop whose gold tables grow a day at a time."""

    def __init__(self, root: Path) -> None:
        self.shop = Shop(CONFIG)
        self.gold = SampleGold(root, self.shop.catalogue())
        self.root = root
        self.days = 0.0

    def advance(self, days: float) -> None:
        self.days += days
        self.gold.add(self.shop.events(until=self.shop.start + self.days * DAY))
        self.gold.write()

    def table(self, name: str) -> pd.DataFrame:
        return DeltaTable(str(gold_path(self.root, name))).to_pandas()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("lake"))
    lake.advance(3)
    return lake


def snapshot(driver: neo4j.Driver, ns: str) -> dict[str, Any]:
    """Everything the loader writes, in comparable form."""

    def rows(query: neo4j.LiteralString) -> list[tuple[Any, ...]]:
        return sorted(tuple(r.values()) for r in driver.execute_query(query, ns=ns).records)

    return {
        "products": rows(
            "MATCH (p:Product {ns: $ns}) RETURN p.sku, p.category, p.units, p.revenue, p.orders, "
            "p.views, p.buyers, round(p.pagerank, 9), p.weighted_degree, p.influence_rank"
        ),
        "categories": rows(
            "MATCH (p:Product {ns: $ns})-[:IN_CATEGORY]->(c:Category) RETURN p.sku, c.name"
        ),
        "viewed": rows(
            "MATCH (s:Shopper {ns: $ns})-[r:VIEWED]->(p) RETURN s.user_id, p.sku, r.views, "
            "r.carts, r.weight, r.first_time, r.last_time"
        ),
        "bought": rows(
            "MATCH (s:Shopper {ns: $ns})-[r:BOUGHT]->(p) "
            "RETURN s.user_id, p.sku, r.units, r.last_time"
        ),
        "pairs": rows(
            "MATCH (a:Product {ns: $ns})-[r:CO_PURCHASED]->(b) RETURN a.sku, b.sku, r.weight, "
            "round(r.lift, 6)"
        ),
        "shoppers": rows("MATCH (s:Shopper {ns: $ns}) RETURN s.user_id"),
    }


def expected_pairs(interactions: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Co-purchase weight and lift recomputed from the gold rows by brute force."""
    bought = interactions[interactions["purchases"] > 0]
    sets = bought.groupby("user_id")["sku"].apply(set)
    buyers = bought.groupby("sku")["user_id"].nunique()
    counts: dict[tuple[str, str], int] = {}
    for items in sets:
        for a, b in itertools.combinations(sorted(items), 2):
            counts[(a, b)] = counts.get((a, b), 0) + 1
    n = len(sets)
    return {
        (a, b): (w, round(float(w * n / (buyers[a] * buyers[b])), 6))
        for (a, b), w in counts.items()
        if w >= MIN_SUPPORT
    }


def assert_pairs(got: list[tuple[Any, ...]], expected: dict[tuple[str, str], Any]) -> None:
    found = {(a, b): (w, lift) for a, b, w, lift in got}
    assert found.keys() == expected.keys()
    for pair, (weight, lift) in expected.items():
        assert found[pair][0] == weight
        assert found[pair][1] == pytest.approx(lift, abs=2e-6)


def test_load_builds_the_graph_from_gold(
    lake: Lake, settings: Settings, driver: neo4j.Driver
) -> None:
    s = graph_settings(settings, lake.root, "load")
    report = load_graph(s, driver)
    assert report.full == dict.fromkeys(report.versions, True)
    graph = snapshot(driver, s.graph_namespace)
    inter = lake.table(USER_ITEM_INTERACTIONS)
    viewed = inter[(inter["views"] > 0) | (inter["carts"] > 0)]
    assert [(u, k, v, c) for u, k, v, c, *_ in graph["viewed"]] == sorted(
        viewed[["user_id", "sku", "views", "carts"]].itertuples(index=False, name=None)
    )
    bought = inter[inter["purchases"] > 0]
    assert [(u, k, n) for u, k, n, _ in graph["bought"]] == sorted(
        bought[["user_id", "sku", "purchases"]].itertuples(index=False, name=None)
    )
    assert [u for (u,) in graph["shoppers"]] == sorted(set(inter["user_id"]))
    pairs = expected_pairs(inter)
    assert len(pairs) > 20, "the sample shop must produce co-purchases"
    assert_pairs(graph["pairs"], pairs)
    catalogue = {c.sku: c.category for c in lake.shop.catalogue()}
    sold = set(lake.table(ORDERS_ENRICHED)["sku"])
    assert dict(graph["categories"]) == {sku: catalogue[sku] for sku in sold}
    ranks = {p[0]: (p[7], p[9]) for p in graph["products"]}
    assert sum(pr for pr, _ in ranks.values()) == pytest.approx(1.0)
    top = min(ranks, key=lambda sku: ranks[sku][1])
    assert ranks[top][0] == max(pr for pr, _ in ranks.values())


def test_rerun_changes_nothing(lake: Lake, settings: Settings, driver: neo4j.Driver) -> None:
    s = graph_settings(settings, lake.root, "rerun")
    load_graph(s, driver)
    before = snapshot(driver, s.graph_namespace)
    report = load_graph(s, driver)
    assert report.unchanged
    assert snapshot(driver, s.graph_namespace) == before


def test_incremental_update_equals_a_full_load(
    settings: Settings, driver: neo4j.Driver, tmp_path: Path
) -> None:
    lake = Lake(tmp_path)
    lake.advance(2)
    incremental = graph_settings(settings, tmp_path, "incremental")
    load_graph(incremental, driver)
    lake.advance(2)
    report = load_graph(incremental, driver)
    assert not any(report.full.values()), "the second run must load only what changed"
    inter = lake.table(USER_ITEM_INTERACTIONS)
    assert report.written["viewed"] < len(inter), "unchanged rows must not be rewritten"
    full = graph_settings(settings, tmp_path, "full")
    load_graph(full, driver)
    assert snapshot(driver, incremental.graph_namespace) == snapshot(driver, full.graph_namespace)
    pairs = snapshot(driver, incremental.graph_namespace)["pairs"]
    assert_pairs(pairs, expected_pairs(inter))


def test_the_warm_up_sends_each_graph_read_with_the_parameters_it_takes(
    settings: Settings, driver: neo4j.Driver
) -> None:
    """What ``tillflow up`` sends once Neo4j answers: each read the API and the graph jobs
    make, each accepted by Neo4j as given (a parameter missing or misnamed is Neo4j's client
    error, raised as it is); a Neo4j that does not answer is named."""
    sent: list[str] = []

    class Recording:  # the real driver, each query it is given noted
        def execute_query(self, query: str, **params: Any) -> Any:
            sent.append(query)
            return driver.execute_query(query, **params)  # type: ignore[arg-type]

    assert warm_up(cast(neo4j.Driver, Recording()), settings) == len(WARM_UP)
    assert sent == [cypher.RELATED, cypher.INFLUENCE, cypher.NEIGHBOURS, cypher.CANDIDATES]
    query, _ = WARM_UP[0]
    with pytest.raises(neo4j.exceptions.ClientError, match="limit"):
        driver.execute_query(query, ns=settings.graph_namespace, sku="")
    closed = settings.model_copy(update={"neo4j_uri": f"bolt://127.0.0.1:{free_port()}"})
    with neo4j_driver(closed) as nowhere, pytest.raises(ServiceUnavailable, match="Neo4j"):
        warm_up(nowhere, closed)


async def test_the_api_asks_its_graph_reads_once_at_start(settings: Settings) -> None:
    """The API's own warm-up (for a Neo4j started without ``tillflow up``, as in the compose
    file): its lifespan asks the related products and the influence of a product no graph
    holds, each accepted by the real Neo4j; a Neo4j that does not answer is logged, not
    raised, so the API still starts."""
    service = GraphService(settings, lambda key: _none())
    sent: list[str] = []
    real = service.driver

    class Session:  # a real session, each query it runs noted
        def __init__(self, session: Any) -> None:
            self.session = session

        async def __aenter__(self) -> Session:
            await self.session.__aenter__()
            return self

        async def __aexit__(self, *exc: object) -> None:
            await self.session.__aexit__(*exc)

        async def run(self, query: str, **params: Any) -> Any:
            sent.append(query)
            return await self.session.run(query, **params)

    class Recording:
        def session(self, **config: Any) -> Session:
            return Session(real.session(**config))

    service.driver = cast(neo4j.AsyncDriver, Recording())
    try:
        assert await service.warm_up() == 2
    finally:
        await real.close()
    assert sent == [cypher.RELATED, cypher.INFLUENCE]
    closed = settings.model_copy(update={"neo4j_uri": f"bolt://127.0.0.1:{free_port()}"})
    nowhere = GraphService(closed, lambda key: _none())
    try:
        assert await nowhere.warm_up() == 0
    finally:
        await nowhere.close()


def test_the_api_lifespan_starts_the_graph_warm_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API's start runs the real warm-up against the real Neo4j (observed, not replaced:
    the method is wrapped to note which service ran it and what Neo4j answered)."""
    answered: list[tuple[GraphService, int]] = []
    done = asyncio.Event()
    real_warm_up = GraphService.warm_up

    async def noted(self: GraphService) -> int:
        answered.append((self, await real_warm_up(self)))
        done.set()
        return answered[-1][1]

    monkeypatch.setattr(GraphService, "warm_up", noted)
    with TestClient(create_app(settings)) as client:
        client.portal.call(asyncio.wait_for, done.wait(), 60)  # type: ignore[union-attr]
        assert answered == [(client.app.state.tillflow.graph, 2)]  # type: ignore[attr-defined]


async def _none() -> None:
    return None


def test_candidates_are_the_highest_lift_pairs_with_support(
    lake: Lake, settings: Settings, driver: neo4j.Driver
) -> None:
    s = graph_settings(settings, lake.root, "load")
    load_graph(s, driver)
    pairs = expected_pairs(lake.table(USER_ITEM_INTERACTIONS))
    sku = max({a for a, _ in pairs}, key=lambda x: sum(1 for a, _ in pairs if a == x))
    found = candidates(driver, s, [sku, "no-such-sku"], limit=3, min_weight=3)
    assert set(found) == {sku}
    lifts = sorted(
        (lift for (a, b), (w, lift) in pairs.items() if sku in (a, b) and w >= 3), reverse=True
    )[:3]
    assert [lift for _, lift in found[sku]] == pytest.approx(lifts, abs=2e-6)


@pytest.fixture(scope="module")
def api(lake: Lake, stack: Settings, driver: neo4j.Driver) -> Iterator[tuple[TestClient, Lake]]:
    s = graph_settings(stack, lake.root, "api")
    with redis_client(s) as cache:
        report = load_graph(s, driver, cache)
    assert report.written["redis_related"] == len(set(lake.table(USER_ITEM_INTERACTIONS)["sku"]))
    with TestClient(create_app(s)) as client:
        yield client, lake


@pytest.mark.cluster
def test_related_endpoint_lists_bought_together(api: tuple[TestClient, Lake]) -> None:
    client, lake = api
    pairs = expected_pairs(lake.table(USER_ITEM_INTERACTIONS))
    (a, b), (weight, lift) = max(pairs.items(), key=lambda kv: kv[1][0])
    r = client.get(f"/graph/products/{a}/related", params={"limit": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sku"] == a
    assert body["items"][0]["weight"] == weight
    assert len(body["items"]) <= 5
    weights = [i["weight"] for i in body["items"]]
    assert weights == sorted(weights, reverse=True)
    top = {i["sku"]: i for i in body["items"]}
    if b in top:
        assert top[b]["lift"] == pytest.approx(lift)


@pytest.mark.cluster
def test_served_lists_equal_neo4j_with_or_without_the_redis_copy(
    api: tuple[TestClient, Lake], settings: Settings, driver: neo4j.Driver
) -> None:
    client, lake = api
    s = graph_settings(settings, lake.root, "api")
    skus = sorted(set(lake.table(USER_ITEM_INTERACTIONS)["sku"]))[:10]
    truth = {r.sku: r.model_dump() for r in related_lists(driver, s, skus, 10)}
    served = {sku: client.get(f"/graph/products/{sku}/related").json() for sku in skus}
    assert served == truth
    with redis_client(s) as cache:
        key = s.keys.graph_related(s.graph_namespace, skus[0])
        copy = orjson.loads(cache.get(key) or b"{}")
        cache.set(key, orjson.dumps({**copy, "items": copy["items"][:1]}))  # the copy is read
        assert client.get(f"/graph/products/{skus[0]}/related").json()["items"] == copy["items"][:1]
        cache.delete(*(s.keys.graph_related(s.graph_namespace, sku) for sku in skus))
    assert {sku: client.get(f"/graph/products/{sku}/related").json() for sku in skus} == truth


def test_a_redis_outage_sends_graph_reads_to_neo4j(
    api: tuple[TestClient, Lake], settings: Settings, driver: neo4j.Driver
) -> None:
    _, lake = api
    s = graph_settings(settings, lake.root, "api")
    url = urlparse(s.redis_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 6379)
    via_proxy = s.model_copy(update={"redis_url": f"redis://127.0.0.1:{proxy.port}/0"})
    sku = sorted(set(lake.table(USER_ITEM_INTERACTIONS)["sku"]))[0]
    truth = related_lists(driver, s, [sku], 10)[0].model_dump()
    try:
        with TestClient(create_app(via_proxy)) as client:
            proxy.cut()
            assert client.get(f"/graph/products/{sku}/related").json() == truth
    finally:
        proxy.close()


def test_influence_endpoint_ranks_products(api: tuple[TestClient, Lake]) -> None:
    client, lake = api
    skus = sorted(set(lake.table(USER_ITEM_INTERACTIONS)["sku"]))
    bodies = [client.get(f"/graph/products/{sku}/influence").json() for sku in skus]
    assert sorted(b["rank"] for b in bodies) == list(range(1, len(skus) + 1))
    assert all(b["products"] == len(skus) for b in bodies)
    best = min(bodies, key=lambda b: b["rank"])
    assert best["pagerank"] == max(b["pagerank"] for b in bodies)
    assert best["neighbours"] > 0


def test_unknown_sku_is_404_and_bad_limit_422(api: tuple[TestClient, Lake]) -> None:
    client, _ = api
    r = client.get("/graph/products/SKU-NOPE/related")
    assert r.status_code == 404
    assert "SKU-NOPE" in r.json()["detail"]
    assert client.get("/graph/products/SKU-NOPE/influence").status_code == 404
    assert client.get("/graph/products/SKU-00001/related", params={"limit": 0}).status_code == 422


def test_missing_neo4j_is_a_503_naming_it(settings: Settings) -> None:
    s = settings.model_copy(update={"neo4j_uri": "bolt://127.0.0.1:1", "neo4j_timeout_s": 1.0})
    with TestClient(create_app(s)) as client:
        r = client.get("/graph/products/SKU-00001/related")
    assert r.status_code == 503
    assert r.json()["service"] == "Neo4j"
    assert "Neo4j is not reachable at bolt://127.0.0.1:1" in r.json()["detail"]


def test_batch_graph_names_a_missing_neo4j_and_missing_gold(tmp_path: Path) -> None:
    import subprocess
    import sys

    base = {"PATH": "/usr/bin:/bin", "TILLFLOW_LAKE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "cli", "batch", "graph"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**base, "TILLFLOW_NEO4J_URI": "bolt://127.0.0.1:1", "TILLFLOW_NEO4J_TIMEOUT_S": "2"},
    )
    assert result.returncode == 1
    assert "Neo4j is not reachable at bolt://127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "cli", "batch", "graph"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=base,
    )
    assert result.returncode == 1
    assert "gold table 'user_item_interactions' not found" in result.stderr
