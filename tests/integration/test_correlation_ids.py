"""Correlation ids from the producers into Kafka headers (the API's is in the live test)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from ingest.producer import EventProducer
from ingest.replay import replay
from schemas.events import InventoryLevel
from schemas.headers import CORRELATION_ID
from schemas.settings import Settings
from schemas.topics import INVENTORY

pytestmark = pytest.mark.integration


def _headers_by_event_id(settings: Settings, prefix: str, count: int) -> dict[str, object]:
    config = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": uuid.uuid4().hex,
        "auto.offset.reset": "earliest",
    }
    consumer = Consumer(config)
    consumer.subscribe([settings.topic(INVENTORY)])
    found: dict[str, object] = {}
    try:
        for _ in range(200):
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            event = InventoryLevel.model_validate_json(msg.value())
            if event.event_id.startswith(prefix):
                found[event.event_id] = msg.headers()
            if len(found) == count:
                break
    finally:
        consumer.close()
    return found


def _event(event_id: str) -> InventoryLevel:
    fields = {"sku": "A", "store_id": "s", "event_time": "2026-01-05T00:00:00Z", "on_hand": 1}
    return InventoryLevel.model_validate({"event_id": event_id, **fields})


async def test_producer_puts_the_correlation_id_in_a_header(stack: Settings) -> None:
    tag = uuid.uuid4().hex[:8]
    producer = EventProducer(stack)
    try:
        await producer.send_all(INVENTORY, [_event(f"{tag}-a")], correlation_id=f"req-{tag}")
        await producer.send_all(INVENTORY, [_event(f"{tag}-b")])
    finally:
        await producer.stop()
    headers = _headers_by_event_id(stack, tag, 2)
    assert headers[f"{tag}-a"] == [(CORRELATION_ID, f"req-{tag}".encode())]
    assert headers[f"{tag}-b"] is None  # no id, no header


async def test_replay_sends_one_id_per_run(stack: Settings, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    path = tmp_path / "inventory.jsonl"
    path.write_text("\n".join(_event(f"{tag}-{i}").model_dump_json() for i in range(5)) + "\n")
    report = await replay(stack, path, INVENTORY)
    assert report.correlation_id.startswith("replay-")
    headers = _headers_by_event_id(stack, tag, 5)
    assert set(map(str, headers.values())) == {
        str([(CORRELATION_ID, report.correlation_id.encode())])
    }
    assert len(headers) == 5
