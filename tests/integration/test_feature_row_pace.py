"""A tailing flow holds a product's feature rows for TILLFLOW_FEATURE_ROW_EVERY_MS and writes
the held ones when no more input comes: Bytewax wakes the category's state, and each product's
row in Redis ends at its last event."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from featurestore.layout import SKU_VIEW, encode_value, field_name, sku_layout
from flows.catalogue import store_catalogue
from flows.run import init_recovery
from infra.clients import redis_client
from infra.stack.topics import delete_topics, ensure_topics
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, USER_ACTIVITY
from simulator.config import ShopConfig
from simulator.shop import Shop
from tests.flow_processes import flow_settings, start_flow, wait_until

pytestmark = pytest.mark.integration

CONFIG = ShopConfig(seed=21, products=12, shoppers=50)
EVERY_MS = 3_000.0  # far longer than the flow takes to read the events below


def _view(producer: Producer, settings: Settings, sku: str, t: float) -> str:
    """A view of ``sku`` at event time ``t``; its time as the feature row stores it."""
    stamp = datetime.fromtimestamp(t, UTC)
    event = {
        "event_id": f"pace-{uuid.uuid4().hex}",
        "event_time": stamp.isoformat(timespec="microseconds"),
        "user_id": "pace-shopper",
        "session_id": "pace-session",
        "action": "view",
        "sku": sku,
    }
    producer.produce(settings.topic(USER_ACTIVITY), value=orjson.dumps(event), key=b"pace")
    return stamp.isoformat(timespec="milliseconds")


@pytest.mark.timeout(300)
def test_held_rows_reach_redis_on_a_wake_up_when_no_more_input_comes(
    stack: Settings, tmp_path: Path
) -> None:
    settings = flow_settings(stack, "pace", tmp_path, feature_row_every_ms=EVERY_MS)
    ensure_topics(settings)
    skus = [item.sku for item in Shop(CONFIG).catalogue()]
    store_catalogue(settings, Shop(CONFIG).catalogue())
    init_recovery(settings.recovery_dir, 1)
    layout = sku_layout(settings)
    stamp_field = field_name(SKU_VIEW, "event_time")
    client = redis_client(settings)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 1})

    def stored(sku: str) -> bytes | None:
        return client.hget(layout.key(sku), stamp_field)  # type: ignore[return-value]

    flow = start_flow(settings, tmp_path / "flow.log")
    try:
        # Every product's first row goes at once (none before it): the flow is reading, and
        # each category's last rows are now younger than the interval.
        now = time.time()
        first = {sku: _view(producer, settings, sku, now) for sku in skus}
        producer.flush(30)
        wait_until(
            lambda: all(stored(s) == encode_value("string", first[s]) for s in skus),
            "every product's first row",
        )
        # Then each product viewed again, and nothing after: what is held must come out alone.
        last = {sku: _view(producer, settings, sku, now + 1 + i) for i, sku in enumerate(skus)}
        producer.flush(30)
        wait_until(
            lambda: all(stored(s) == encode_value("string", last[s]) for s in skus),
            "every product's last row, with no more input",
            timeout_s=60,
        )
        assert flow.poll() is None, "the flow exited"
    finally:
        flow.terminate()
        flow.wait(timeout=30)
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
