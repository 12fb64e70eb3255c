"""``tillflow demo`` on a small shop: history backfilled through Kafka and the detached flows
into the lake, models trained and registered, the graph loaded while they train, prices with
history, ranked recommendations, and a line for every phase as it completes.

Runs the demo's phases as ``make demo`` does (services started detached, in a fresh project
folder with the default relative paths), with a shop small enough for CI.
"""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from deltalake import DeltaTable

from cli.demo import run_demo
from infra.clients import neo4j_driver
from infra.stack import local
from infra.stack.topics import delete_topics
from registry import ModelRegistry
from schemas.lake import bronze_path
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, USER_ACTIVITY
from simulator.config import ShopConfig
from tests.credentials import admin_headers
from tests.flow_processes import free_port

pytestmark = pytest.mark.integration

CONFIG = ShopConfig(seed=3, products=40, shoppers=300, sessions_per_day=1_500, competitors=1)


@pytest.fixture
def demo_settings(
    stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """A fresh project folder and prefixes; the detached services read them from the env."""
    rid = uuid.uuid4().hex[:6]
    env = {
        "TILLFLOW_TOPIC_PREFIX": f"{stack.topic_prefix}demo{rid}.",
        "TILLFLOW_REDIS_PREFIX": f"{stack.redis_prefix}demo{rid}:",
        "TILLFLOW_GRAPH_NAMESPACE": f"demo{rid}",
        "TILLFLOW_MLFLOW_MODEL_PREFIX": f"test-demo{rid}-",
        "TILLFLOW_API_PORT": str(free_port()),
        "TILLFLOW_FLOW_METRICS_PORT": "0",
        "TILLFLOW_SCHEDULER_METRICS_PORT": "0",
        "TILLFLOW_RATE_LIMIT_PER_S": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    try:
        yield settings
    finally:
        local.down(settings)  # only what this folder started: api, flows, scheduler
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
        from graph.load import drop_namespace
        from infra.clients import neo4j_driver

        with neo4j_driver(settings) as driver:
            drop_namespace(driver, settings.graph_namespace)


def _get(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as answer:
        body: dict[str, Any] = json.loads(answer.read())
    return body


def _most_active_shopper(settings: Settings) -> str:
    views = DeltaTable(str(bronze_path(settings.lake_dir, USER_ACTIVITY))).to_pyarrow_table()
    counts = (
        views.group_by("key").aggregate([("key", "count")]).sort_by([("key_count", "descending")])
    )
    return str(counts.column("key")[0].as_py())


def test_the_demo_backfills_trains_and_serves_before_going_live(
    demo_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = demo_settings
    run_demo(settings, rate=200, days=0.002, backfill_days=4, config=CONFIG, keep_running=True)

    # every phase printed its line once; the graph and the pipeline overlap, in either order
    phases = re.findall(r"^\[ *[0-9.]+s\] (\w+) done in [0-9.]+s: ", capsys.readouterr().out, re.M)
    assert phases[:2] == ["stack", "backfill"], phases
    assert sorted(phases[2:]) == ["graph", "pipeline"], phases
    with neo4j_driver(settings) as driver:
        loaded = driver.execute_query(
            "MATCH (p:Product {ns: $ns}) RETURN count(p) AS n", ns=settings.graph_namespace
        ).records
    assert loaded[0]["n"] == CONFIG.products, "the graph was not loaded"

    # the detached flows wrote the lake where this folder's commands read it
    assert Path(".tillflow/lake/bronze").is_dir()
    registry = ModelRegistry.from_settings(settings)
    assert registry.current("demand") is not None
    assert registry.current("ranker") is not None

    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        published: dict[str, str] = client.hgetall(settings.keys.current_prices)  # type: ignore[assignment]
    finally:
        client.close()
    assert published, "the backfill published no price"
    sku = sorted(published)[0]
    api = f"http://{settings.api_host}:{settings.api_port}"
    detail = _get(f"{api}/pricing/{sku}")
    assert detail["history"], "a published price has no history"
    # the demo went live only once the API served the models it had trained
    shopper = _most_active_shopper(settings)
    recs = _get(f"{api}/recommendations/{shopper}", admin_headers(settings))
    assert recs["source"] == "ranker", recs
    assert recs["items"]
