"""Redis blackholed under load (connections open, no byte forwarded) for as long as the flow
needs to show it is blocked and retrying (about 30 s), then back: the flow never dies and
loses nothing, and the API reports Redis unavailable at once, then recovers by itself."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx2 as httpx
import orjson
import pytest
import redis
from deltalake import DeltaTable

from featurestore.layout import user_layout
from flows.catalogue import store_catalogue
from flows.run import init_recovery, process_commands
from infra.stack.topics import delete_topics, ensure_topics
from schemas.lake import bronze_path
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, USER_ACTIVITY
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop
from simulator.shop import Shop
from tests.flow_processes import (
    bronze_offsets,
    flow_env,
    free_port,
    metric_values,
    read_so_far,
    topic_offsets,
    wait_until,
)
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

CONFIG = ShopConfig(seed=5, products=30, shoppers=400, sessions_per_day=20_000, competitors=1)
EVENTS = 12_000
RATE = 300  # events/s while the outage lasts
RETRIES_IN_OUTAGE = 8  # failed writes of one sink: with the backoff, about 30 s of silence


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2.0).status_code
    except httpx.HTTPError:
        return 0


def _bronze_users(settings: Settings) -> set[str]:
    table = DeltaTable(str(bronze_path(settings.lake_dir, USER_ACTIVITY))).to_pyarrow_table(
        columns=["payload"]
    )
    return {orjson.loads(p)["user_id"] for p in table.column("payload").to_pylist()}


@pytest.mark.timeout(900)
def test_a_blackholed_redis_blocks_the_flow_and_the_api_then_both_recover_losing_nothing(
    stack: Settings, tmp_path: Path
) -> None:
    rid = uuid.uuid4().hex[:6]
    real = urlparse(stack.redis_url)
    proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 6379)
    settings = stack.model_copy(
        update={
            "topic_prefix": f"{stack.topic_prefix}bh{rid}.",
            "redis_prefix": f"{stack.redis_prefix}bh{rid}:",
            "lake_dir": tmp_path / "lake",
            "recovery_dir": tmp_path / "recovery",
            "snapshot_s": 1,
            "lake_flush_s": 0.2,
            "flow_base_port": free_port(),
            "flow_metrics_port": free_port(),
            "api_port": free_port(),
            "rate_limit_per_s": 0.0,
        }
    )
    proxied = settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{proxy.port}{real.path or '/0'}"}
    )
    ensure_topics(settings)
    store_catalogue(settings, Shop(CONFIG).catalogue())
    init_recovery(settings.recovery_dir, 1)
    logs = tmp_path / "logs"
    logs.mkdir()
    with (logs / "flow.log").open("wb") as out:
        flow = subprocess.Popen(
            process_commands(proxied, 1, 1, recovery=True)[0],
            env=flow_env(proxied),
            stdout=out,
            stderr=out,
        )
    with (logs / "api.log").open("wb") as out:
        api = subprocess.Popen(
            [sys.executable, "-m", "cli", "api"], env=flow_env(proxied), stdout=out, stderr=out
        )
    api_url = f"http://127.0.0.1:{settings.api_port}"
    port = settings.flow_metrics_port
    load = threading.Thread(
        target=lambda: asyncio.run(
            run_shop(settings, CONFIG, RunOptions(rate=RATE, clock="wall", max_events=EVENTS))
        )
    )
    try:
        wait_until(lambda: _status(f"{api_url}/readyz") == 200, "the API to be ready")
        load.start()
        wait_until(lambda: read_so_far(port) > 500, "the flow to process events")

        proxy.blackhole()
        wait_until(lambda: _status(f"{api_url}/readyz") == 503, "the API to report Redis")
        wait_until(
            lambda: (
                max(metric_values(port, "tillflow_flow_sink_retries_total") or [0])
                >= RETRIES_IN_OUTAGE
            ),
            "a flow sink to retry through the outage",
        )
        assert max(metric_values(port, "tillflow_flow_sink_blocked")) == 1
        assert flow.poll() is None, "the flow died during the outage"
        proxy.restore()

        load.join()
        wait_until(lambda: _status(f"{api_url}/readyz") == 200, "the API to recover")
        wait_until(
            lambda: (
                max(metric_values(port, "tillflow_flow_sink_blocked") or [1]) == 0
                and len(bronze_offsets(settings)) >= EVENTS
            ),
            "the flow to catch up",
        )
        assert flow.poll() is None, "the flow died"
        assert bronze_offsets(settings) == topic_offsets(settings)  # every message, once
        users = _bronze_users(settings)
        layout = user_layout(settings)
        client = redis.Redis.from_url(settings.redis_url)
        try:
            wait_until(
                lambda: all(client.exists(layout.key(u)) for u in users),
                "every shopper's features in Redis",
            )
        finally:
            client.close()
    finally:
        proxy.restore()
        for p in (flow, api):
            p.terminate()
            p.wait(timeout=30)
        proxy.close()
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
