"""A batch sent through the real producer gives the event loop's other work turns while its
messages are handed to the client (``ingest.producer.EventProducer.send_all``): the API's
served-list log sends ~50 lists at a time, and sent in one turn they held the requests
behind them (docs/scaling.md)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ingest.producer import TURN_EVERY, EventProducer
from schemas.events import InventoryLevel
from schemas.settings import Settings
from schemas.topics import INVENTORY
from tests.loop_turns import LoopTurns

pytestmark = pytest.mark.integration


def _event(event_id: str) -> InventoryLevel:
    fields = {"sku": "A", "store_id": "s", "event_time": "2026-01-05T00:00:00Z", "on_hand": 1}
    return InventoryLevel.model_validate({"event_id": event_id, **fields})


async def test_a_batch_is_handed_to_the_client_between_turns_of_the_loop(
    stack: Settings,
) -> None:
    tag = uuid.uuid4().hex[:8]
    events = [_event(f"{tag}-{n}") for n in range(4 * TURN_EVERY)]
    producer = EventProducer(stack)
    try:
        await producer.start()
        client = producer._producer
        assert client is not None
        send = client.send
        turns_at_send: list[int] = []
        async with LoopTurns() as turns:

            async def counted_send(*args: Any, **kwargs: Any) -> Any:
                turns_at_send.append(turns.count)
                return await send(*args, **kwargs)

            client.send = counted_send  # type: ignore[method-assign]
            await producer.send_all(INVENTORY, events)
    finally:
        await producer.stop()
    assert len(turns_at_send) == len(events)
    # The first send waits for the topic's metadata (the other task runs meanwhile); from the
    # second on, it ran between slices of TURN_EVERY sends, not only after the last.
    assert turns_at_send[-1] - turns_at_send[1] >= 3
