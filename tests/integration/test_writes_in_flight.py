"""A flow killed while its sink writes are in flight loses none of them.

The sinks write in threads of their own and are joined at the end of each recovery epoch
(flows/sinks/overlap.py). The test blackholes Redis under a flow that has room for many
batches in flight, so the writes hang while the flow could read on; it SIGKILLs the flow once
a sink has retried a few times, restores Redis and runs the flow again from its recovery
state to the end of the topics. Every shopper's features must then hold the event time of
their last event, and bronze every message once: an epoch committed before its writes were
done would have been skipped by the restarted flow, its writes lost with the killed process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import orjson
import pytest
import redis
from deltalake import DeltaTable
from google.protobuf.timestamp_pb2 import Timestamp

from featurestore.layout import user_layout
from flows.catalogue import store_catalogue
from flows.run import init_recovery, process_commands
from infra.stack.topics import delete_topics, ensure_topics
from schemas.lake import bronze_path
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, ORDERS, USER_ACTIVITY
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop
from simulator.shop import Shop
from tests.flow_processes import (
    bronze_offsets,
    flow_env,
    flow_settings,
    metric_values,
    read_so_far,
    topic_offsets,
    wait_until,
)
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

CONFIG = ShopConfig(seed=11, products=30, shoppers=3_000, sessions_per_day=20_000, competitors=1)
EVENTS = 30_000
RETRIES_BEFORE_KILL = 3  # failed writes of one sink: several epochs of blackholed Redis


def _last_event_times(settings: Settings) -> dict[str, float]:
    """Each shopper's latest event time among the events in bronze (activity and orders)."""
    last: dict[str, float] = defaultdict(lambda: float("-inf"))
    for topic in (USER_ACTIVITY, ORDERS):
        table = DeltaTable(str(bronze_path(settings.lake_dir, topic))).to_pyarrow_table(
            columns=["payload"]
        )
        for raw in table.column("payload").to_pylist():
            event = orjson.loads(raw)
            t = datetime.fromisoformat(event["event_time"]).timestamp()
            last[event["user_id"]] = max(last[event["user_id"]], t)
    return dict(last)


def _feature_times(settings: Settings, users: list[str]) -> dict[str, float | None]:
    """The event time each shopper's features in the Feast online store were written at."""
    layout = user_layout(settings)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for u in users:
            pipe.hget(layout.key(u), layout.ts_field)
        raws = pipe.execute()
    finally:
        client.close()
    out: dict[str, float | None] = {}
    for u, raw in zip(users, raws, strict=True):
        ts = None if raw is None else Timestamp.FromString(raw)
        out[u] = None if ts is None else ts.seconds + ts.nanos / 1e9
    return out


@pytest.mark.timeout(900)
def test_a_flow_killed_with_writes_in_flight_loses_none_of_them(
    stack: Settings, tmp_path: Path
) -> None:
    real = urlparse(stack.redis_url)
    proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 6379)
    # Room for every batch of the run: only the join at each epoch's end stops the flow from
    # reading on (and committing epochs) while Redis takes nothing.
    settings = flow_settings(stack, "inflight", tmp_path, kafka_batch=200, sink_in_flight=10_000)
    proxied = settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{proxy.port}{real.path or '/0'}"}
    )
    ensure_topics(settings)
    try:
        asyncio.run(run_shop(settings, CONFIG, RunOptions(max_events=EVENTS)))
        store_catalogue(settings, Shop(CONFIG).catalogue())
        init_recovery(settings.recovery_dir, 1)
        port = settings.flow_metrics_port
        logs = tmp_path / "logs"
        logs.mkdir()
        with (logs / "killed.log").open("wb") as out:
            flow = subprocess.Popen(
                process_commands(proxied, 1, 1, recovery=True)[0],
                env=flow_env(proxied),
                stdout=out,
                stderr=out,
            )
        try:
            wait_until(lambda: read_so_far(port) > 2_000, "the flow to process events")
            proxy.blackhole()
            wait_until(
                lambda: (
                    max(metric_values(port, "tillflow_flow_sink_retries_total") or [0])
                    >= RETRIES_BEFORE_KILL
                ),
                "a flow sink to retry into the blackholed Redis",
            )
            assert flow.poll() is None, "the flow died before it was killed"
            os.kill(flow.pid, signal.SIGKILL)
            flow.wait()
        finally:
            proxy.restore()
            proxy.close()

        with (logs / "resumed.log").open("wb") as out:
            resumed = subprocess.run(
                process_commands(settings, 1, 1, recovery=True)[0],
                env=flow_env(settings, tail=False),
                stdout=out,
                stderr=out,
                timeout=600,
                check=False,
            )
        assert resumed.returncode == 0, (logs / "resumed.log").read_text(errors="replace")[-3000:]

        assert bronze_offsets(settings) == topic_offsets(settings)  # every message, once
        last = _last_event_times(settings)
        written = _feature_times(settings, sorted(last))
        behind = {
            u: (written[u], t) for u, t in last.items() if written[u] != pytest.approx(t, abs=1e-3)
        }
        assert not behind, f"{len(behind)} of {len(last)} shoppers' last events lost: " + str(
            sorted(behind.items())[:5]
        )
    finally:
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
