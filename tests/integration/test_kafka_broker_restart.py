"""The Kafka broker SIGKILLed while the simulator produces and the flow consumes, then
restarted: the producer's events wait in its queue and go out after the restart, the flow
never dies, counts the consumer errors and resumes; bronze holds every offset once and no
price update is published twice. The broker is this test's own."""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flows.catalogue import store_catalogue
from flows.run import init_recovery
from infra.stack.topics import ensure_topics
from schemas.settings import Settings
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop
from simulator.shop import Shop
from tests.flow_processes import (
    bronze_offsets,
    flow_settings,
    metric_values,
    read_so_far,
    start_flow,
    topic_offsets,
    wait_until,
)
from tests.integration.test_flow_recovery import _price_update_ids
from tests.own_kafka import DETACHED, own_kafka

pytestmark = [pytest.mark.integration, DETACHED]

CONFIG = ShopConfig(seed=13, products=30, shoppers=500, sessions_per_day=30_000, competitors=1)
WARMUP = ShopConfig(seed=14, products=30, shoppers=500, sessions_per_day=30_000, competitors=1)
EVENTS = 60_000
RATE = 1_000  # events/s: a minute of sending, started once the flow reads


@pytest.mark.timeout(900)
def test_a_broker_killed_and_restarted_under_load_loses_and_repeats_nothing(
    stack: Settings, tmp_path: Path
) -> None:
    with own_kafka(stack, tmp_path / "kafka") as broker:
        settings = flow_settings(
            broker.settings,
            "kb",
            tmp_path,
            # the producer's queue waits out the restart (its timeout is 3 x kafka_timeout_s)
            kafka_timeout_s=120.0,
        )
        ensure_topics(settings)
        store_catalogue(settings, Shop(CONFIG).catalogue())
        init_recovery(settings.recovery_dir, 1)
        port = settings.flow_metrics_port
        options = RunOptions(max_events=EVENTS, rate=RATE)
        flow = start_flow(settings, tmp_path / "flow.log")
        try:
            # A few events first, so that the live stream starts once the flow is reading.
            warmup = asyncio.run(run_shop(settings, WARMUP, RunOptions(max_events=1_000)))
            wait_until(lambda: read_so_far(port) >= warmup.events, "the flow to be reading")
            with ThreadPoolExecutor(1) as pool:
                producing = pool.submit(lambda: asyncio.run(run_shop(settings, CONFIG, options)))
                wait_until(
                    lambda: read_so_far(port) > warmup.events + EVENTS // 12,
                    "the flow to be under way",
                )
                assert not producing.done(), "the producer finished before the broker died"
                broker.kill()
                # The flow notices in its sinks (the price updates wait for their
                # acknowledgement) or in its consumer, whichever it is in when the broker dies.
                wait_until(
                    lambda: (
                        sum(metric_values(port, "tillflow_flow_consumer_errors_total")) > 0
                        or max(metric_values(port, "tillflow_flow_sink_blocked") or [0]) == 1
                    ),
                    "the flow to see the broker gone",
                )
                assert flow.poll() is None, "the flow died with the broker"
                broker.start()
                report = producing.result(timeout=600)
            assert report.events == EVENTS
            expected = topic_offsets(settings)
            assert len(expected) == warmup.events + EVENTS  # the producer lost nothing either
            wait_until(
                lambda: len(bronze_offsets(settings)) >= len(expected),
                "the flow to catch up",
                timeout_s=600,
            )
            assert flow.poll() is None, "the flow died"
            assert bronze_offsets(settings) == expected  # every offset, once
            ids = _price_update_ids(settings)
            assert ids
            assert [i for i, n in Counter(ids).items() if n > 1] == []
        finally:
            flow.terminate()
            flow.wait(timeout=30)
