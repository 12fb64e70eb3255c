"""Bounded state and a Redis rebuilt, not trusted, through the real flow.

The flow reads a simulated shop (plus events for a product missing from the catalogue) from
the real broker, with recovery, into a Redis of this module alone (``own_redis``), so that a
test may flush it. Then: unknown products are counted and kept in the lake but never priced
or listed; keys carry their idle TTLs and lists their caps; after a flush the serving state
comes back by itself (the guard) and on demand (``tillflow redis rebuild``); a shopper idle
for longer than ``TILLFLOW_SHOPPER_IDLE_S`` leaves the flow's state.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from bytewax.recovery import RecoveryConfig
from bytewax.testing import run_main
from confluent_kafka import Producer
from deltalake import DeltaTable

from featurestore.layout import sku_layout, user_layout
from flows.catalogue import load_catalogue, read_catalogue_file
from flows.dataflow import build_flow
from flows.rebuild import RebuildReport, RedisGuard, rebuild
from flows.recovered import recovered_state
from flows.run import init_recovery
from infra.clients import redis_client
from infra.errors import ServiceUnavailable
from infra.readiness import require_topics
from infra.stack.topics import delete_topics, ensure_topics
from schemas.lake import bronze_path
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, USER_ACTIVITY
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

CONFIG = ShopConfig(seed=11, products=30, shoppers=300, sessions_per_day=20_000, competitors=2)
UNKNOWN = "SKU-NOT-IN-CATALOGUE"
UNKNOWN_EVENTS = 40


@dataclass
class Run:
    settings: Settings
    unknown_ids: set[str]
    before: dict[str, Any]  # the serving state the flow wrote


def _unknown_views(n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "event_id": f"unknown-{uuid.uuid4().hex}",
            "event_time": now,
            "user_id": f"U-x{i % 4}",
            "session_id": f"s-x{i % 4}",
            "action": "view",
            "sku": UNKNOWN,
        }
        for i in range(n)
    ]


def _tagged_id(key: str) -> str:
    """The entity id of a key: its hash tag, between the braces (schemas/keys.py)."""
    return key.partition("{")[2].removesuffix("}")


def serving_state(settings: Settings) -> dict[str, Any]:
    """What the API serves from Redis, reduced to values a rebuild must restore."""
    client = redis_client(settings, decode_responses=True)
    raw = redis_client(settings)
    keys = settings.keys
    try:
        catalogue = client.hgetall(keys.catalogue)
        skus = sorted(catalogue)
        users = sorted(_tagged_id(k) for k in client.scan_iter(keys.recommendations("*")))
        sku_feast, user_feast = sku_layout(settings), user_layout(settings)
        return {
            "catalogue": catalogue,
            "prices": client.hgetall(keys.current_prices),
            "price_details": {s: client.hgetall(keys.price(s)) for s in skus},
            "popular": client.zrevrange(keys.popularity, 0, -1),
            "neighbours": {s: client.hgetall(keys.neighbours(s)) for s in skus},
            "sku_features": {s: raw.hgetall(sku_feast.key(s)) for s in skus},
            "user_features": {u: raw.hgetall(user_feast.key(u)) for u in users},
            "recommendations": {
                u: orjson.loads(client.get(keys.recommendations(u)) or "{}").get("user_id")
                for u in users
            },
        }
    finally:
        client.close()
        raw.close()


def _until_topics_listed(settings: Settings) -> None:
    """Created topics reach the broker's metadata a moment later: wait until they are listed."""
    deadline = time.monotonic() + 30
    while True:
        try:
            require_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
            return
        except ServiceUnavailable:
            if time.monotonic() > deadline:
                raise


@pytest.fixture(scope="module")
def flow_run(
    stack: Settings, own_redis: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    rid = uuid.uuid4().hex[:6]
    tmp = tmp_path_factory.mktemp("state")
    settings = stack.model_copy(
        update={
            "topic_prefix": f"{stack.topic_prefix}state{rid}.",
            "redis_url": own_redis,
            "lake_dir": tmp / "lake",
            "recovery_dir": tmp / "recovery",
            "catalogue_file": tmp / "catalogue.jsonl",
            "graph_namespace": f"test-{rid}",
            "shopper_idle_s": 3_600.0,
            "product_idle_s": 7_200.0,
            "popularity_len": 8,
            "price_history_len": 2,
            "redis_check_s": 0.2,
        }
    )
    ensure_topics(settings)
    _until_topics_listed(settings)
    asyncio.run(run_shop(settings, CONFIG, RunOptions(days=0.5, clock="wall")))
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    unknown = _unknown_views(UNKNOWN_EVENTS)
    for e in unknown:
        producer.produce(settings.topic(USER_ACTIVITY), value=orjson.dumps(e), key=e["user_id"])
    producer.flush(30)
    init_recovery(settings.recovery_dir, 1)
    flow = build_flow(settings, load_catalogue(settings), tail=False)
    run_main(flow, recovery_config=RecoveryConfig(str(settings.recovery_dir)))
    yield Run(settings, {e["event_id"] for e in unknown}, serving_state(settings))
    delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])


def test_unknown_products_are_counted_and_kept_in_the_lake_but_never_priced_or_listed(
    flow_run: Run,
) -> None:
    settings, keys = flow_run.settings, flow_run.settings.keys
    client = redis_client(settings, decode_responses=True)
    try:
        assert int(client.hget(keys.flow_stats, "unknown_products") or 0) == UNKNOWN_EVENTS
        assert not client.hexists(keys.current_prices, UNKNOWN)
        assert not client.exists(keys.price(UNKNOWN))
        popular = [client.zrange(k, 0, -1) for k in client.scan_iter(f"{keys.popularity}*")]
        assert popular
        assert all(UNKNOWN not in members for members in popular)
        neighbours = [client.hkeys(k) for k in client.scan_iter(keys.neighbours("*"))]
        assert neighbours
        assert all(UNKNOWN not in n for n in neighbours)
        assert not client.exists(keys.neighbours(UNKNOWN))
    finally:
        client.close()
    ids = (
        DeltaTable(bronze_path(settings.lake_dir, USER_ACTIVITY))
        .to_pyarrow_table(columns=["event_id"])["event_id"]
        .to_pylist()
    )
    assert flow_run.unknown_ids <= set(ids)
    assert flow_run.before["prices"]  # the catalogue's products were priced meanwhile


def test_idle_keys_carry_their_ttl_and_lists_their_caps(flow_run: Run) -> None:
    settings, keys = flow_run.settings, flow_run.settings.keys
    client = redis_client(settings)
    try:
        users = list(client.scan_iter(keys.recommendations("*")))
        skus = list(flow_run.before["prices"])
        assert users
        assert skus
        shopper_keys = [*users, *(user_layout(settings).key(_tagged_id(u.decode())) for u in users)]
        product_keys = [
            k
            for s in skus
            for k in (keys.price(s), keys.price_history(s), sku_layout(settings).key(s))
        ]
        assert all(3_500 < client.ttl(k) <= 3_600 for k in shopper_keys)
        assert all(7_000 < client.ttl(k) <= 7_200 for k in product_keys)
        for durable in (keys.catalogue, keys.current_prices, keys.popularity):
            assert client.ttl(durable) == -1  # never expires, never evicted (volatile-lru)
        popular = list(client.scan_iter(f"{keys.popularity}*"))
        assert popular
        assert all(client.zcard(k) <= 8 for k in popular)
        assert any(client.zcard(k) == 8 for k in popular)
        assert all(client.zcard(keys.price_history(s)) <= 2 for s in skus)
        assert any(client.zcard(keys.price_history(s)) == 2 for s in skus)
    finally:
        client.close()


EXACT = ("catalogue", "prices", "price_details", "sku_features", "user_features")


def assert_rebuilt(settings: Settings, before: dict[str, Any]) -> None:
    """The serving state is back: the values the flow writes at every change exactly as it
    left them; the lists it publishes now and then (neighbours every 25 updates, popularity
    every 10 interactions) as its newest state has them; a list for every shopper."""
    after = serving_state(settings)
    assert {k: after[k] for k in EXACT} == {k: before[k] for k in EXACT}
    state = recovered_state(settings.recovery_dir)
    near = {sku: state.neighbours[sku].similarity.similar() for sku in state.neighbours}
    assert after["neighbours"] == {
        sku: {n: str(w) for n, w in near.get(sku, [])} for sku in before["neighbours"]
    }
    ranked = sorted(
        ((round(s.popularity, 4), sku) for sku, s in state.skus.items() if s.category),
        reverse=True,
    )
    assert after["popular"] == [sku for _, sku in ranked[: settings.popularity_len]]
    assert after["recommendations"].keys() == before["recommendations"].keys()
    assert all(after["recommendations"].values())


def _flush(settings: Settings) -> None:
    client = redis_client(settings)
    try:
        client.flushall()  # this module's own Redis: losing its data is the point
        assert client.dbsize() == 0
    finally:
        client.close()


def test_serving_state_comes_back_by_itself_after_redis_loses_its_data(flow_run: Run) -> None:
    settings = flow_run.settings
    assert rebuild(settings, graph=False).written  # the marker of a complete Redis is set
    _flush(settings)
    rebuilt = threading.Event()
    reports: list[RebuildReport] = []

    failures: list[BaseException] = []

    def observed(s: Settings) -> RebuildReport:
        try:
            reports.append(rebuild(s))
        except BaseException as exc:
            failures.append(exc)
            raise
        finally:
            rebuilt.set()
        return reports[-1]

    stop = threading.Event()
    RedisGuard(settings, rebuild=observed).start(stop)
    try:
        assert rebuilt.wait(120), "the guard did not rebuild the flushed Redis"
    finally:
        stop.set()
    assert not failures, "".join(traceback.format_exception(failures[0])) if failures else ""
    assert_rebuilt(settings, flow_run.before)
    assert reports[0].written["recommendations"] == len(flow_run.before["recommendations"])
    assert "graph" not in reports[0].skipped  # Neo4j answered (this namespace has no graph)


def test_serving_state_comes_back_on_demand(flow_run: Run) -> None:
    settings = flow_run.settings
    _flush(settings)
    env = {
        "TILLFLOW_REDIS_URL": settings.redis_url,
        "TILLFLOW_REDIS_PREFIX": settings.redis_prefix,
        "TILLFLOW_RECOVERY_DIR": str(settings.recovery_dir),
        "TILLFLOW_CATALOGUE_FILE": str(settings.catalogue_file),
        "TILLFLOW_GRAPH_NAMESPACE": settings.graph_namespace,
        "TILLFLOW_PRODUCT_IDLE_S": str(settings.product_idle_s),
        "TILLFLOW_SHOPPER_IDLE_S": str(settings.shopper_idle_s),
        "TILLFLOW_POPULARITY_LEN": str(settings.popularity_len),
        "TILLFLOW_PRICE_HISTORY_LEN": str(settings.price_history_len),
    }
    result = subprocess.run(
        [sys.executable, "-m", "cli", "redis", "rebuild", "--no-graph"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    users = len(flow_run.before["recommendations"])
    assert re.search(rf"^recommendations\s+{users} written back$", result.stdout, re.M)
    assert_rebuilt(settings, flow_run.before)
    assert len(read_catalogue_file(settings.catalogue_file)) == CONFIG.products


def test_a_rebuild_leaves_newer_values_alone(flow_run: Run) -> None:
    settings, keys = flow_run.settings, flow_run.settings.keys
    client = redis_client(settings, decode_responses=True)
    try:
        sku = next(iter(flow_run.before["prices"]))
        client.hset(keys.current_prices, sku, "123.45")  # as if the flow priced it since
        report = rebuild(settings, graph=False)
        assert client.hget(keys.current_prices, sku) == "123.45"
        assert report.written["prices"] == 0
    finally:
        client.close()


def test_shoppers_idle_longer_than_their_idle_time_leave_the_flow_state(
    flow_run: Run, tmp_path: Path
) -> None:
    before = recovered_state(flow_run.settings.recovery_dir)
    assert before.shoppers
    assert before.skus
    recovery = tmp_path / "recovery"
    shutil.copytree(flow_run.settings.recovery_dir, recovery)
    settings = flow_run.settings.model_copy(
        update={"recovery_dir": recovery, "shopper_idle_s": 0.001}
    )
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for e in _unknown_views(4):
        producer.produce(settings.topic(USER_ACTIVITY), value=orjson.dumps(e), key=e["user_id"])
    producer.flush(30)
    flow = build_flow(settings, load_catalogue(settings), tail=False)
    run_main(flow, recovery_config=RecoveryConfig(str(recovery)))
    after = recovered_state(recovery)
    assert not set(before.shoppers) & set(after.shoppers)  # idle for longer than 1 ms: gone
    assert set(after.skus) == set(before.skus)  # products (idle time 2 h) are kept
