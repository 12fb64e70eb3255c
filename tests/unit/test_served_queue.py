"""The served-list log's queue (``api/served.py``): what serving a list costs and keeps."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from api.metrics import ApiMetrics
from api.served import ServedLog, served_list
from ingest.producer import TURN_EVERY, EventProducer
from schemas.events import Event
from schemas.serving import Recommendations, RecommendedItem
from schemas.settings import Settings
from schemas.topics import Topic
from tests.loop_turns import LoopTurns

WHEN = datetime(2026, 1, 5, 10, tzinfo=UTC)


def _shown(user: str, skus: list[str]) -> Recommendations:
    items = [RecommendedItem(sku=s, score=1.0, source="popular") for s in skus]
    return Recommendations(user_id=user, list_name="discover", items=items, source="popularity")


def test_a_full_queue_drops_the_oldest_list_and_counts_it() -> None:
    metrics = ApiMetrics()
    log = ServedLog(
        EventProducer(Settings(environment="test")), 1.0, metrics, capacity=2, clock=lambda: WHEN
    )
    log.record(_shown("u-0", []))  # nothing shown: nothing to learn from
    for n in range(1, 4):
        log.record(_shown(f"u-{n}", ["a", "b"]))
    assert [shown.user_id for shown, _, _ in log.pending] == ["u-2", "u-3"]
    dropped = {"outcome": "dropped"}
    assert metrics.registry.get_sample_value("tillflow_served_lists_total", dropped) == 1
    ids = {event_id for _, _, event_id in log.pending}
    assert len(ids) == 2  # each list keeps one id, whatever retries send it again
    event = served_list(*log.pending[0])
    assert (event.user_id, event.event_time, [i.sku for i in event.items]) == (
        "u-2",
        WHEN,
        ["a", "b"],
    )


class CountingProducer(EventProducer):
    """Acknowledges every batch a few turns of the event loop later and counts the produce
    calls (no Kafka: the integration test ``test_served_log`` sends through the real one)."""

    def __init__(self, expected: int) -> None:
        super().__init__(Settings(environment="test"))
        self.batches: list[int] = []
        self.expected = expected
        self.all_sent = asyncio.Event()

    async def send_all(self, topic: Topic, events: Sequence[Event], **_: Any) -> None:
        self.batches.append(len(events))
        for _turn in range(3):  # the broker's acknowledgement: requests go on meanwhile
            await asyncio.sleep(0)
        if sum(self.batches) >= self.expected:
            self.all_sent.set()


def test_lists_served_while_a_woken_log_lingers_go_in_one_produce_call() -> None:
    """Lists served a turn of the event loop apart (as requests are) after the first woke
    the log wait with it for the linger (longer here than the test: ``close`` sends them),
    instead of a produce request for every list or two."""

    async def serve() -> list[int]:
        producer = CountingProducer(expected=100)
        log = ServedLog(producer, 1.0, ApiMetrics(), clock=lambda: WHEN, linger_s=3_600)
        task = asyncio.create_task(log.run())
        await asyncio.sleep(0)  # the task starts its first flush, of the empty queue
        assert log._flushing is not None
        await log._flushing
        for n in range(100):
            log.record(_shown(f"u-{n}", ["a"]))
            await asyncio.sleep(0)  # the next request's turn (no time passes)
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await log.close()  # what lingered
        return producer.batches

    assert asyncio.run(serve()) == [100]


def test_a_flush_takes_the_lists_queued_before_it_began() -> None:
    """Lists served while a batch is being produced wait for the next flush: one that
    drained until the queue stayed empty sent a produce request for every list or two."""

    async def serve() -> tuple[int, int, list[int]]:
        producer = CountingProducer(expected=5)
        log = ServedLog(producer, 1.0, ApiMetrics(), clock=lambda: WHEN)
        for n in range(3):
            log.record(_shown(f"u-{n}", ["a"]))
        flushing = asyncio.ensure_future(log.flush())
        await asyncio.sleep(0)  # the flush has taken the three and is producing them
        for n in range(3, 5):
            log.record(_shown(f"u-{n}", ["a"]))
        logged = await flushing
        return logged, len(log.pending), producer.batches

    assert asyncio.run(serve()) == (3, 2, [3])


def test_a_flush_builds_its_events_between_turns_of_the_event_loop() -> None:
    """The requests served while a flush builds the log's events get turns of the loop
    every TURN_EVERY lists: a flush of every list at once held them for all of its lists."""

    async def flush(lists: int) -> tuple[int, int]:
        async with LoopTurns() as turns:

            class TurnsAtSend(CountingProducer):
                async def send_all(self, topic: Topic, events: Sequence[Event], **_: Any) -> None:
                    self.batches.append(turns.count)

            producer = TurnsAtSend(expected=lists)
            log = ServedLog(producer, 1.0, ApiMetrics(), clock=lambda: WHEN)
            for n in range(lists):
                log.record(_shown(f"u-{n}", ["a"]))
            before = turns.count
            await log.flush()
        return before, producer.batches[0]

    before, at_send = asyncio.run(flush(4 * TURN_EVERY))
    assert at_send - before >= 4  # a turn every TURN_EVERY events built
