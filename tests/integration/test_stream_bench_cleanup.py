"""``benchmarks.stream.freshness`` cleans up after a flow process is SIGKILLed in its run: it
ends the run at once (a probe would never show), stops the other flow process by its PID, and
deletes the run's topics and Redis keys (its prefix and its Feast entities)."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from pathlib import Path

import pytest
import redis
from confluent_kafka.admin import AdminClient

from benchmarks.stream import freshness, variant
from featurestore.layout import project_name, user_layout
from schemas.settings import Settings
from tests.flow_processes import alive, flow_children, wait_until

pytestmark = pytest.mark.integration


def test_a_killed_flow_ends_the_run_and_leaves_nothing_behind(
    stack: Settings, tmp_path: Path
) -> None:
    tag = f"kill{uuid.uuid4().hex[:6]}"
    s = variant(stack, tag, tmp_path)
    client = redis.Redis.from_url(s.redis_url)
    killed: list[int] = []
    flows: list[int] = []

    def kill_one_flow() -> None:
        # once the start-up probe (probe -1, shopper probe-19) has shown: both processes run
        first_probe = user_layout(s).key(f"probe-{-1 % 20}")
        wait_until(lambda: client.exists(first_probe), "the start-up probe", timeout_s=300)
        flows.extend(wait_until(lambda: flow_children(os.getpid()), "the flow processes"))
        os.kill(flows[0], signal.SIGKILL)
        killed.append(flows[0])

    killer = threading.Thread(target=kill_one_flow, daemon=True)
    killer.start()
    try:
        with pytest.raises(RuntimeError, match="flow process exited during the run"):
            freshness(stack, tmp_path, tag, probes=200, load_n=2_000, rate=500, processes=2)
        killer.join(timeout=10)
        assert killed
        assert len(flows) == 2
        assert not any(alive(pid) for pid in flows)
        assert flow_children(os.getpid()) == []
        topics = AdminClient({"bootstrap.servers": s.kafka_bootstrap}).list_topics(timeout=10)
        assert not [t for t in topics.topics if t.startswith(s.topic_prefix)]
        assert not list(client.scan_iter(f"{s.redis_prefix}*"))
        assert not list(client.scan_iter(f"*{project_name(s)}"))
    finally:
        client.close()
