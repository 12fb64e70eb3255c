"""The co-purchase graph -> benchmarks/results/graph.json.

One pass over the simulated shop (seed 42, list prices):

- ``load_seconds_1m_events``: the first 1,000,000 events become gold tables
  (``tests.sample_gold.SampleGold``, not timed), loaded into an empty namespace of the real
  Neo4j by ``graph.load.load_graph`` (timed; median of repeats, each into a fresh namespace).
  Baseline: ``read_gold_seconds``, the part spent reading and diffing the Delta tables.
  ``incremental_load_seconds``: the next TEST_DAYS of events, loaded on top.
- ``related_p50_ms`` / ``related_p99_ms``: ``GET /graph/products/{sku}/related`` through the
  real API (uvicorn on 127.0.0.1, CONCURRENCY requests in flight); baseline: the same Cypher
  through the async driver at the same concurrency (``raw_cypher_p50_ms``/``_p99_ms``).
- ``hr_at_10_with_graph`` / ``hr_at_10_without_graph``: the protocol of benchmarks/quality.py.
  The streaming recommender (flows.steps state) learns from every event; the graph is built
  from the first 1M events only (the training days). For each purchase after that, is a bought
  product in the shopper's top-10 from the streaming recommender alone, or from the streaming
  and the graph's highest-lift co-purchases merged (tests/graph_candidates.py)?
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import httpx2

from benchmarks.common import (
    Mode,
    free_port,
    median,
    parse_mode,
    percentile,
    print_repeat,
    write_result,
)
from benchmarks.quality import accepted
from flows.steps import ItemNeighbours, ShopperState, SkuState, sku_signals, user_signal
from graph import cypher
from graph.load import drop_namespace, load_graph
from graph.queries import candidates
from infra.clients import neo4j_async_driver, neo4j_driver, redis_client
from infra.readiness import require_neo4j
from online_models.popularity import counts
from online_models.recommender import CATEGORY_ITEMS, NEIGHBOURS, Profile, discover
from schemas.settings import Settings
from simulator.config import ShopConfig
from simulator.shop import DAY, Emitted, Shop
from tests.graph_candidates import GRAPH_WEIGHT, MIN_SHOPPERS, recommend_with_graph
from tests.sample_gold import SampleGold

EVENTS = 1_000_000
TEST_DAYS = 7
REPEATS = 2
REQUESTS = 3_000
CONCURRENCY = 4
GRAPH_WEIGHTS = (0.05, 0.1, 0.25, 0.5)  # the sweep; GRAPH_WEIGHT is the default


class Recommender:
    """The streaming recommender's state, as the dataflow keeps it (flows.steps)."""

    def __init__(self, shop: Shop) -> None:
        self.categories = {c.sku: c.category for c in shop.catalogue()}
        self.skus: dict[str, SkuState] = {}
        self.shoppers: dict[str, ShopperState] = {}
        self.items: dict[str, ItemNeighbours] = {}

    def learn(self, e: Emitted) -> None:
        rec = accepted(e)
        for sku, (_, signal) in sku_signals(rec):
            if signal.kind in ("view", "add_to_cart", "sale"):
                state = self.skus.get(sku)
                if state is None:  # with its category: popularity counts catalogue products only
                    state = self.skus[sku] = SkuState(sku, category=self.categories.get(sku, ""))
                state.apply(signal)
        routed = user_signal(rec)
        if routed is not None:
            user, (_, signal) = routed
            shopper = self.shoppers.get(user) or self.shoppers.setdefault(user, ShopperState(user))
            for item, (_, counts) in shopper.apply(signal, self.categories).pairs:
                self.items.setdefault(item, ItemNeighbours()).add(counts)

    def context(self, user: str) -> tuple[Profile, dict[str, Any], dict[str, Any], list[Any]]:
        """The shopper's profile, category best sellers, neighbours and popular items."""
        profile = (self.shoppers.get(user) or ShopperState(user)).profile(self.categories)
        streaming = {
            s: dict(self.items[s].similarity.similar()) for s in profile.recent if s in self.items
        }
        scored = {s: st.popularity for s, st in self.skus.items() if st.interactions}
        counted = counts(scored, min(scored.values(), default=0.0))  # as the API counts them
        popular = sorted(counted.items(), key=lambda kv: -kv[1])
        best: dict[str, Any] = {}
        for sku, score in popular:
            cat = self.categories.get(sku)
            if cat is not None and len(best.setdefault(cat, [])) < CATEGORY_ITEMS:
                best[cat].append((sku, score))
        return profile, best, streaming, popular[:20]


def timed_loads(
    settings: Settings, lake: Path, run: str, repeats: int = REPEATS
) -> tuple[dict[str, list[float]], str]:
    """Full loads of the gold under ``lake`` into fresh namespaces; the last one is kept."""
    runs: dict[str, list[float]] = {"load_seconds_1m_events": [], "read_gold_seconds": []}
    with neo4j_driver(settings) as driver, redis_client(settings) as cache:
        for repeat in range(repeats):
            ns = f"bench-{run}-{repeat}"
            s = settings.model_copy(update={"lake_dir": lake, "graph_namespace": ns})
            started = time.perf_counter()
            report = load_graph(s, driver, cache)
            runs["load_seconds_1m_events"].append(time.perf_counter() - started)
            runs["read_gold_seconds"].append(report.seconds["read_gold"])
            runs.setdefault("steps", []).append(report.seconds)  # type: ignore[arg-type]
            print_repeat(repeat, repeats, {k: v for k, v in runs.items() if k != "steps"})
            if repeat < repeats - 1:
                drop_namespace(driver, ns)
    return runs, ns


async def latencies(call: Any, skus: list[str]) -> list[float]:
    """Milliseconds per call, ``CONCURRENCY`` calls in flight over ``REQUESTS`` skus."""
    queue = iter(skus)
    out: list[float] = []

    async def worker() -> None:
        for sku in queue:
            started = time.perf_counter()
            await call(sku)
            out.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return out


async def api_latencies(base: str, skus: list[str]) -> list[float]:
    async with httpx2.AsyncClient(base_url=base, timeout=10) as client:

        async def call(sku: str) -> None:
            r = await client.get(f"/graph/products/{sku}/related")
            r.raise_for_status()

        await latencies(call, skus[:200])  # warm-up
        return await latencies(call, skus)


async def raw_latencies(settings: Settings, skus: list[str]) -> list[float]:
    driver = neo4j_async_driver(settings)

    async def call(sku: str) -> None:
        async with driver.session() as session:
            result = await session.run(
                cypher.RELATED, ns=settings.graph_namespace, sku=sku, limit=10
            )
            await result.single()

    try:
        await latencies(call, skus[:200])
        return await latencies(call, skus)
    finally:
        await driver.close()


def serve(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TILLFLOW_GRAPH_NAMESPACE": settings.graph_namespace,
        "TILLFLOW_NEO4J_URI": settings.neo4j_uri,
        "TILLFLOW_LOG_LEVEL": "warning",
        "TILLFLOW_RATE_LIMIT_PER_S": "0",  # measure latency, not the per-client rate limit
    }
    api = subprocess.Popen(
        [sys.executable, "-m", "cli", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180  # start-up is not measured; loaded cores make it slow
    while time.monotonic() < deadline and api.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return api
        except OSError:
            time.sleep(0.2)
    api.kill()
    raise RuntimeError(f"the API did not start (exit code {api.poll()})")


def related_latency(
    settings: Settings, skus: list[str], requests: int = REQUESTS
) -> dict[str, list[float]]:
    rng = random.Random(7)
    picks = [rng.choice(skus) for _ in range(requests)]
    port = free_port()
    api = serve(settings, port)
    try:
        via_api = asyncio.run(api_latencies(f"http://127.0.0.1:{port}", picks))
    finally:
        api.terminate()
        api.wait(10)
    raw = asyncio.run(raw_latencies(settings, picks))
    return {
        "related_p50_ms": [percentile(via_api, 50)],
        "related_p99_ms": [percentile(via_api, 99)],
        "raw_cypher_p50_ms": [percentile(raw, 50)],
        "raw_cypher_p99_ms": [percentile(raw, 99)],
    }


def main(mode: Mode) -> None:
    events_n, test_days = mode.size(EVENTS, 8_000), mode.size(TEST_DAYS, 0.1)
    repeats, requests = mode.size(REPEATS, 1), mode.size(REQUESTS, 100)
    settings = Settings()
    require_neo4j(settings)
    run = datetime.now(UTC).strftime("%H%M%S")
    shop = Shop(ShopConfig(products=100) if mode.smoke else ShopConfig())
    lake = Path(tempfile.mkdtemp(prefix="tillflow-graph-bench-"))
    gold = SampleGold(lake, shop.catalogue())
    reco = Recommender(shop)
    events: Iterator[Emitted] = shop.events()
    cutoff = shop.start
    for e in islice(events, events_n):
        gold.add((e,))
        reco.learn(e)
        cutoff = e.time
    gold.write()
    runs, ns = timed_loads(settings, lake, run, repeats)
    graph_settings = settings.model_copy(update={"lake_dir": lake, "graph_namespace": ns})
    skus = sorted(reco.skus)
    with neo4j_driver(settings) as driver:
        graph = candidates(driver, graph_settings, skus, NEIGHBOURS, MIN_SHOPPERS)
    hits = {"without": 0, **{f"with_{w}": 0 for w in GRAPH_WEIGHTS}}
    trials = 0
    test: list[Emitted] = []
    for e in events:
        if e.time >= cutoff + test_days * DAY:
            break
        test.append(e)
        if e.topic.name == "orders":
            bought = {line["sku"] for line in e.payload["lines"]}
            profile, best, streaming, popular = reco.context(e.payload["user_id"])
            alone, _ = discover(profile, best, streaming, popular, 10)
            trials += 1
            hits["without"] += bool(bought & {s for s, _ in alone})
            for w in GRAPH_WEIGHTS:
                merged, _ = recommend_with_graph(profile, best, streaming, graph, popular, 10, w)
                hits[f"with_{w}"] += bool(bought & {s for s, _ in merged})
        reco.learn(e)
    gold.add(test)
    gold.write()
    with neo4j_driver(settings) as driver, redis_client(settings) as cache:
        started = time.perf_counter()
        load_graph(graph_settings, driver, cache)
        incremental = time.perf_counter() - started
    runs.update(related_latency(graph_settings, skus, requests))
    with neo4j_driver(settings) as driver, redis_client(settings) as cache:
        drop_namespace(driver, ns)
        cache.delete(*(settings.keys.graph_related(ns, sku) for sku in skus))
    figures = {k: median(v) for k, v in runs.items() if k != "steps"}
    figures.update(
        {
            "incremental_load_seconds": incremental,
            "hr_at_10_with_graph": hits[f"with_{GRAPH_WEIGHT}"] / trials,
            "hr_at_10_without_graph": hits["without"] / trials,
        }
    )
    meta = {
        "repeats": repeats,
        "events": events_n,
        "test_days": test_days,
        "test_events": len(test),
        "recommendation_trials": trials,
        "requests": requests,
        "concurrency": CONCURRENCY,
        "namespace": ns,
        "graph_weight": GRAPH_WEIGHT,
        "hr_at_10_by_graph_weight": {k: v / trials for k, v in hits.items()},
        **runs,
    }
    path = write_result("graph", figures, meta, mode)
    print(", ".join(f"{k}={v:,.3f}" for k, v in figures.items()))
    print(f"wrote {path}")


if __name__ == "__main__":
    main(parse_mode(__doc__))
