"""The price sink publishes each change to the price-updates topic exactly once across
replays: a replayed batch is skipped; a crash between Kafka's acknowledgement and the Redis
record is found from the pending mark; a flow started from fresh state is not a replay."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry

from flows.metrics import FlowMetrics
from flows.sinks.context import SinkContext
from flows.sinks.delivery import Outgoing
from flows.sinks.prices import PriceWriter, price_update_event
from infra.stack.topics import delete_topics, ensure_topics
from online_models.pricer import PriceChange
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS
from tests.integration.test_flow_recovery import _price_update_ids

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def _changes(sku: str, sequences: range) -> list[PriceChange]:
    return [
        PriceChange(
            sku=sku,
            price=10.0 + n,
            previous_price=9.0 + n,
            reason="test",
            model_version="pricer:test",
            t=time.time(),
            sequence=n,
        )
        for n in sequences
    ]


def test_each_price_change_reaches_the_topic_once_across_replays_and_crashes(
    stack: Settings,
) -> None:
    rid = uuid.uuid4().hex[:6]
    settings = stack.model_copy(
        update={
            "topic_prefix": f"{stack.topic_prefix}pr{rid}.",
            "redis_prefix": f"{stack.redis_prefix}pr{rid}:",
        }
    )
    ensure_topics(settings)
    metrics = FlowMetrics(CollectorRegistry())

    def writer(lineage: str) -> PriceWriter:
        return PriceWriter(settings, SinkContext("prices", 0, metrics, lineage))

    try:
        first = writer("state-1")
        first.write_batch(_changes("SKU-A", range(1, 4)))
        first.close()

        replay = writer("state-1")  # restarted from the same state: the batch again
        replay.write_batch(_changes("SKU-A", range(1, 4)))
        # Killed after Kafka acknowledged change 4 but before Redis recorded it:
        replay._begin(["SKU-A"])
        event = price_update_event(_changes("SKU-A", range(4, 5))[0]).model_dump_json()
        replay.kafka.produce([Outgoing(replay.topic, b"SKU-A", event.encode())])
        replay.kafka.deliver()

        recovered = writer("state-1")  # finds the pending mark, reads what was produced
        assert recovered.produced == {"SKU-A": 4}
        recovered.write_batch(_changes("SKU-A", range(1, 6)))
        recovered.close()
        ids = _price_update_ids(settings)
        assert Counter(ids) == {f"price:SKU-A:{n}": 1 for n in range(1, 6)}

        fresh = writer("state-2")  # started from fresh state: counts from 1 and publishes
        fresh.write_batch(_changes("SKU-A", range(1, 2)))
        fresh.close()
        assert Counter(_price_update_ids(settings))["price:SKU-A:1"] == 2
    finally:
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
