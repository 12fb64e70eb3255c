"""Events survive a round trip through the real broker, keyed by their entity."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ingest.producer import EventProducer
from ingest.validation import validate_one
from schemas.settings import Settings
from schemas.topics import INPUT_TOPICS, Topic
from tests.unit.test_schemas import POLICY, VALID

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("topic", INPUT_TOPICS, ids=lambda t: t.name)
async def test_round_trip_through_the_broker(
    stack: Settings, topic: Topic, consume: Callable[..., list[tuple[bytes, dict[str, object]]]]
) -> None:
    events = [
        validate_one(topic, {**VALID[topic.name], "event_id": f"rt-{topic.name}-{i}"}, POLICY)
        for i in range(5)
    ]
    producer = EventProducer(stack)
    try:
        await producer.send_all(topic, events)
    finally:
        await producer.stop()
    received = consume(topic, 5, where=lambda v: str(v["event_id"]).startswith("rt-"))
    assert len(received) == 5
    by_id = {
        validate_one(topic, value, POLICY).event_id: (key, validate_one(topic, value, POLICY))
        for key, value in received
    }
    for event in events:
        key, back = by_id[event.event_id]
        assert back == event
        assert key == topic.key_of(event)
