"""Product search: latency through the API, index freshness from the stream, bulk throughput.

``python -m benchmarks.search`` (``--smoke``: a tiny pass whose results go to a temporary folder).

- ``search_rps`` / ``search_p50_ms`` / ``search_p99_ms``: ``GET /search`` through the API (one
  uvicorn worker) under ``wrk`` with CONNECTIONS requests in flight (one per core), over typo'd
  product names with facets; baseline ``engine_p50_ms``/``engine_p99_ms``: the same queries
  straight to OpenSearch. ``search_rps_wide`` / ``search_p99_ms_wide``: the same with
  WIDE_CONNECTIONS in flight (throughput bought with queueing). WARMUP_QUERIES go to the node
  first: a just-started JVM answers the first thousands of queries several times slower.
- ``api_cpu_ms_per_search`` / ``engine_cpu_ms_per_search``: CPU time of the API process and
  of the OpenSearch node during the load, per answered search: the cost of a search, less
  sensitive than latency to other work on the cores (the node's figure includes whatever else
  it served meanwhile).
- ``index_freshness_p99_ms``: a price published on ``price-updates`` → that price visible in
  search results (the indexer consuming, bulk-writing, and the index refreshing); baseline the
  index's refresh interval.
- ``bulk_docs_per_s``: catalogue documents written by the indexer's bulk requests; baseline
  ``single_docs_per_s``: one update request per document.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from confluent_kafka import Producer

from benchmarks.common import Mode, free_port, median, percentile, print_repeat, write_result
from benchmarks.serving import raise_fd_limit, start_api, wrk
from flows.catalogue import store_catalogue
from infra.readiness import require_kafka, require_opensearch, require_redis
from infra.stack.topics import delete_topics, ensure_topics
from schemas.catalogue import CatalogueItem
from schemas.events import PriceUpdate
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, PRICE_UPDATES
from search.client import ensure_product_index, opensearch_client
from search.documents import catalogue_actions
from search.indexer import Indexer, Pending
from search.query import RESPONSE_FIELDS, SearchQuery, search_body
from simulator.config import ShopConfig
from simulator.shop import Shop

REFRESH_MS = 500.0  # search.documents.index_body's refresh interval


@dataclass(frozen=True)
class Size:
    products: int
    price_changes: int
    repeats: int
    seconds: int
    single_docs: int


# wrk's requests in flight: one per core, the operating point the latency goal is read at;
# and twice that, to show what queueing on two busy cores adds (``*_wide``).
CONNECTIONS = 2
WARMUP_QUERIES = 2_000  # sent straight to the node before any figure is taken
WIDE_CONNECTIONS = 4
# The benchmark's own clients wait as long as a just-started node under load needs (a slow answer
# is a figure, not an error); the API keeps its serving timeout (settings.opensearch_timeout_s).
MEASURE_TIMEOUT_S = 60.0
FULL = Size(products=5_000, price_changes=200, repeats=3, seconds=10, single_docs=300)
SMOKE = Size(products=200, price_changes=20, repeats=1, seconds=2, single_docs=30)


def typo(text: str, rng: random.Random) -> str:
    """Drop one letter of one longer word (what a hurried shopper types)."""
    words = text.lower().split()
    i = max(range(len(words)), key=lambda j: len(words[j]))
    w = words[i]
    if len(w) > 4:
        k = rng.randrange(1, len(w) - 1)
        words[i] = w[:k] + w[k + 1 :]
    return " ".join(words[-2:])


def queries(items: list[CatalogueItem], n: int = 500) -> list[str]:
    """Query strings for ``/search?``: typo'd names, some with a category or a price cap."""
    rng = random.Random(42)
    out = []
    for _ in range(n):
        item = rng.choice(items)
        params: dict[str, str] = {"q": typo(item.title, rng)}
        roll = rng.random()
        if roll < 0.25:
            params["category"] = item.category
        elif roll < 0.4:
            params["max_price"] = f"{item.list_price * 2:.2f}"
        out.append(urllib.parse.urlencode(params))
    return out


def bulk_docs_per_s(settings: Settings, items: list[CatalogueItem]) -> float:
    """The indexer's own flush over the catalogue, in ``search_bulk_docs`` chunks."""
    indexer = Indexer(settings)
    with opensearch_client(settings, timeout_s=MEASURE_TIMEOUT_S) as client:
        ensure_product_index(client, settings)
        started = time.perf_counter()
        for i in range(0, len(items), settings.search_bulk_docs):
            indexer.pending = Pending(
                catalogue={c.sku: c for c in items[i : i + settings.search_bulk_docs]}
            )
            indexer.flush(client)
        elapsed = time.perf_counter() - started
        client.indices.refresh(index=settings.search_index)
    return len(items) / elapsed


def single_docs_per_s(settings: Settings, items: list[CatalogueItem]) -> float:
    """Baseline: the same documents, one update request each."""
    with opensearch_client(settings, timeout_s=MEASURE_TIMEOUT_S) as client:
        started = time.perf_counter()
        for item in items:
            _, doc = catalogue_actions(settings.search_index, [item])
            client.update(index=settings.search_index, id=item.sku, body=doc)
        return len(items) / (time.perf_counter() - started)


def engine_ms(settings: Settings, lines: list[str], n: int) -> list[float]:
    """Baseline: the API's requests sent straight to OpenSearch (no HTTP API in between), one
    at a time."""
    out = []
    with opensearch_client(settings, timeout_s=MEASURE_TIMEOUT_S) as client:
        for line in lines[:n]:
            params = dict(urllib.parse.parse_qsl(line))
            cap = params.get("max_price")
            query = SearchQuery(
                q=params.get("q"),
                category=params.get("category"),
                max_price=float(cap) if cap else None,
            )
            started = time.perf_counter()
            client.search(
                index=settings.search_index, body=search_body(query), filter_path=RESPONSE_FIELDS
            )
            out.append((time.perf_counter() - started) * 1000)
    return out


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_cpu_s(settings: Settings) -> float:
    """CPU seconds the OpenSearch node's process has used (its own statistics)."""
    with opensearch_client(settings, timeout_s=MEASURE_TIMEOUT_S) as client:
        stats = client.nodes.stats(metric="process")["nodes"]
    return sum(float(n["process"]["cpu"]["total_in_millis"]) for n in stats.values()) / 1000


def freshness_ms(settings: Settings, items: list[CatalogueItem], n: int) -> list[float]:
    """Publish ``n`` price changes (10 a second); time each until search returns the price."""
    stop = threading.Event()
    indexer = Indexer(settings)
    worker = threading.Thread(target=indexer.run, args=(stop,), daemon=True)
    worker.start()
    rng = random.Random(7)
    chosen = rng.sample(items, n)
    sent: dict[str, tuple[float, float]] = {}
    seen: dict[str, float] = {}
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 0})

    def watch() -> None:
        with opensearch_client(settings, timeout_s=MEASURE_TIMEOUT_S) as client:
            while not stop.is_set():
                waiting = {s: p for s, (p, _) in list(sent.items()) if s not in seen}
                if waiting:
                    body = {
                        "query": {"terms": {"sku": list(waiting)}},
                        "size": len(waiting),
                        "_source": ["sku", "price"],
                    }
                    for hit in client.search(index=settings.search_index, body=body)["hits"][
                        "hits"
                    ]:
                        src = hit["_source"]
                        if src.get("price") == waiting[src["sku"]]:
                            seen[src["sku"]] = time.perf_counter()
                stop.wait(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    try:
        # The indexer has consumed its topics and written the catalogue before the clock runs.
        assert indexer.wait_for(lambda: indexer.indexed > 0, 120), "indexer did not start"
        watcher.start()
        for item in chosen:
            price = round(item.list_price * 0.9, 2)
            event = PriceUpdate(
                event_id=uuid.uuid4().hex,
                event_time=datetime.now(UTC),
                sku=item.sku,
                price=Decimal(str(price)),
                previous_price=Decimal(str(item.list_price)),
                reason="bench",
                model_version="pricer:bench",
            )
            sent[item.sku] = (price, time.perf_counter())
            producer.produce(
                settings.topic(PRICE_UPDATES), event.model_dump_json().encode(), item.sku.encode()
            )
            producer.poll(0)
            time.sleep(0.1)
        producer.flush(10)
        deadline = time.monotonic() + 30
        while len(seen) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(30)
        watcher.join(5)
    return [(seen[s] - t0) * 1000 for s, (_, t0) in sent.items() if s in seen] + [
        float("inf") for s in sent if s not in seen
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny pass, results to a temp dir")
    size = SMOKE if parser.parse_args().smoke else FULL
    raise_fd_limit()
    base = Settings()
    require_kafka(base)
    require_redis(base)
    require_opensearch(base)
    rid = uuid.uuid4().hex[:6]
    settings = base.model_copy(
        update={
            "topic_prefix": f"bench-search-{rid}.",
            "redis_prefix": f"bench-search-{rid}:",
            "search_index": f"bench-search-{rid}-products",
        }
    )
    ensure_topics(settings)
    items = Shop(ShopConfig(products=size.products)).catalogue()
    store_catalogue(settings, items)
    runs: dict[str, list[float]] = {}
    log = Path(tempfile.mkdtemp()) / "api.log"
    os.environ["TILLFLOW_SEARCH_INDEX"] = settings.search_index  # the API process's index
    try:
        runs["bulk_docs_per_s"] = [bulk_docs_per_s(settings, items)]
        runs["single_docs_per_s"] = [single_docs_per_s(settings, items[: size.single_docs])]
        lines = queries(items)
        fresh = freshness_ms(settings, items, size.price_changes)
        # a node serving a shop has compiled its query path: warm a fresh JVM up first
        engine_ms(settings, lines, WARMUP_QUERIES if size is FULL else 20)
        runs["index_freshness_p50_ms"] = [percentile(fresh, 50)]
        runs["index_freshness_p99_ms"] = [percentile(fresh, 99)]
        runs["index_freshness_missed"] = [float(sum(1 for f in fresh if f == float("inf")))]
        for repeat in range(size.repeats):
            port = free_port()
            api = start_api(settings, port, settings.api_cache_ttl_s, log)
            try:
                api_cpu, node_cpu = process_cpu_s(api.pid), node_cpu_s(settings)
                url = f"http://127.0.0.1:{port}"
                r = wrk(url, lines, "/search?", settings, size.seconds, in_flight=CONNECTIONS)
                served = max(r["rps"] * size.seconds, 1.0)
                api_cpu = process_cpu_s(api.pid) - api_cpu
                node_cpu = node_cpu_s(settings) - node_cpu
                wide = wrk(
                    url, lines, "/search?", settings, size.seconds, in_flight=WIDE_CONNECTIONS
                )
            finally:
                api.terminate()
                api.wait(30)
            runs.setdefault("api_cpu_ms_per_search", []).append(api_cpu * 1000 / served)
            runs.setdefault("engine_cpu_ms_per_search", []).append(node_cpu * 1000 / served)
            runs.setdefault("search_rps", []).append(r["rps"])
            runs.setdefault("search_p50_ms", []).append(r["p50"])
            runs.setdefault("search_p99_ms", []).append(r["p99"])
            runs.setdefault("search_errors", []).append(r["errors"])
            runs.setdefault("search_rps_wide", []).append(wide["rps"])
            runs.setdefault("search_p99_ms_wide", []).append(wide["p99"])
            engine = engine_ms(settings, lines, 300 if size is FULL else 50)
            runs.setdefault("engine_p50_ms", []).append(percentile(engine, 50))
            runs.setdefault("engine_p99_ms", []).append(percentile(engine, 99))
            print_repeat(repeat, size.repeats, runs)
    finally:
        os.environ.pop("TILLFLOW_SEARCH_INDEX", None)
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
        with opensearch_client(settings, timeout_s=MEASURE_TIMEOUT_S) as client:
            client.indices.delete(index=settings.search_index, ignore_unavailable=True)
    figures = {k: median(v) for k, v in runs.items()}
    figures["refresh_interval_ms"] = REFRESH_MS
    meta = {
        "repeats": size.repeats,
        "products": size.products,
        "seconds": size.seconds,
        "price_changes": size.price_changes,
        "connections": CONNECTIONS,
        "wide_connections": WIDE_CONNECTIONS,
        "load_average_1m": os.getloadavg()[0],
        **runs,
    }
    print(f"wrote {write_result('search', figures, meta, Mode(smoke=size is SMOKE))}")


if __name__ == "__main__":
    main()
