"""The price sink publishes each change to the price-updates topic exactly once across
replays: a replayed batch is skipped; a crash between Kafka's acknowledgement and the Redis
record is found from the pending marks, however often the flow is killed before its replay
records it and whichever worker prices the product after a restart with another number of
processes; a flow started from fresh state is not a replay."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from flows.metrics import FlowMetrics
from flows.sinks.context import SinkContext
from flows.sinks.delivery import Delivering, Outgoing, Pending, delivering_producer
from flows.sinks.prices import PriceWriter, price_update_event
from infra.clients import redis_client
from infra.stack.topics import delete_topics, ensure_topics
from online_models.pricer import PriceChange
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, PRICE_UPDATES
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


@pytest.fixture
def isolated(stack: Settings) -> Iterator[Settings]:
    rid = uuid.uuid4().hex[:6]
    settings = stack.model_copy(
        update={
            "topic_prefix": f"{stack.topic_prefix}pr{rid}.",
            "redis_prefix": f"{stack.redis_prefix}pr{rid}:",
        }
    )
    ensure_topics(settings)
    try:
        yield settings
    finally:
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])


def _writers(settings: Settings, lineage: str, processes: int = 1) -> list[PriceWriter]:
    """The price writers of a flow started with ``processes`` processes (one worker each)."""
    metrics = FlowMetrics(CollectorRegistry())
    return [
        PriceWriter(settings, SinkContext("prices", w, metrics, lineage, processes=processes))
        for w in range(processes)
    ]


def _killed_after_producing(writer: PriceWriter, changes: list[PriceChange]) -> None:
    """The writer is killed after Kafka acknowledged ``changes``, before Redis recorded them."""
    writer._begin(sorted({c.sku for c in changes}))
    writer.kafka.produce(
        [
            Outgoing(writer.topic, c.sku.encode(), price_update_event(c).model_dump_json().encode())
            for c in changes
        ]
    )
    writer.kafka.deliver()
    writer.close()


def _bookkeeping(settings: Settings, lineage: str) -> tuple[dict[str, str], dict[str, str]]:
    """The pending marks and the changes found produced but not recorded, as Redis has them."""
    redis = redis_client(settings, decode_responses=True)
    try:
        marks = redis.hgetall(settings.keys.price_pending(lineage))
        produced = redis.hgetall(settings.keys.price_produced(lineage))
        return marks, produced  # type: ignore[return-value]
    finally:
        redis.close()


def _once(*products: tuple[str, int]) -> dict[str, int]:
    return {f"price:{sku}:{n}": 1 for sku, last in products for n in range(1, last + 1)}


def test_each_price_change_reaches_the_topic_once_across_replays_and_crashes(
    isolated: Settings,
) -> None:
    settings = isolated  # its own topics and keys
    (first,) = _writers(settings, "state-1")
    first.write_batch(_changes("SKU-A", range(1, 4)))
    first.close()

    (replay,) = _writers(settings, "state-1")  # restarted from the same state: the batch again
    replay.write_batch(_changes("SKU-A", range(1, 4)))
    _killed_after_producing(replay, _changes("SKU-A", range(4, 5)))

    (recovered,) = _writers(settings, "state-1")  # finds the mark, reads what was produced
    assert _bookkeeping(settings, "state-1") == ({}, {"SKU-A": "4"})
    recovered.write_batch(_changes("SKU-A", range(1, 6)))
    recovered.close()
    assert Counter(_price_update_ids(settings)) == _once(("SKU-A", 5))
    assert _bookkeeping(settings, "state-1") == ({}, {})

    # Killed twice in a row: after changes 6 of SKU-A and SKU-B reached Kafka only, and again
    # after the next writer's first batch, which held SKU-B alone.
    (crashed,) = _writers(settings, "state-1")
    crashed.write_batch(_changes("SKU-B", range(1, 6)))
    _killed_after_producing(
        crashed, [*_changes("SKU-A", range(6, 7)), *_changes("SKU-B", range(6, 7))]
    )
    (again,) = _writers(settings, "state-1")
    again.write_batch(_changes("SKU-B", range(1, 7)))  # SKU-A's change not replayed yet
    assert _bookkeeping(settings, "state-1") == ({}, {"SKU-A": "6"})
    again.close()
    (last,) = _writers(settings, "state-1")  # must still know SKU-A's change 6 is in Kafka
    last.write_batch([*_changes("SKU-A", range(1, 8)), *_changes("SKU-B", range(1, 8))])
    last.close()
    assert Counter(_price_update_ids(settings)) == _once(("SKU-A", 7), ("SKU-B", 7))
    assert _bookkeeping(settings, "state-1") == ({}, {})

    (fresh,) = _writers(settings, "state-2")  # started from fresh state: counts from 1
    fresh.write_batch(_changes("SKU-A", range(1, 2)))
    fresh.close()
    assert Counter(_price_update_ids(settings))["price:SKU-A:1"] == 2


def test_a_crash_is_not_published_twice_when_the_flow_restarts_with_another_process_count(
    isolated: Settings,
) -> None:
    settings = isolated  # its own topics and keys
    (alone,) = _writers(settings, "state-1")
    alone.write_batch(_changes("SKU-C", range(1, 6)))
    _killed_after_producing(alone, _changes("SKU-C", range(6, 7)))

    # Restarted on two processes: SKU-C is now priced by worker 1; worker 0's writer found its
    # own mark and stored what it had left in Kafka, which worker 1 reads with its batch.
    zero, one = _writers(settings, "state-1", processes=2)
    one.write_batch(_changes("SKU-C", range(1, 8)))
    assert Counter(_price_update_ids(settings)) == _once(("SKU-C", 7))
    zero.close()

    # Killed on two processes while worker 1 had SKU-D's change 3 in Kafka only; restarted on
    # one process, whose worker 0 prices SKU-D and removes the absent worker's mark.
    one.write_batch(_changes("SKU-D", range(1, 3)))
    _killed_after_producing(one, _changes("SKU-D", range(3, 4)))
    assert list(_bookkeeping(settings, "state-1")[0]) == ["1"]
    (back,) = _writers(settings, "state-1")
    assert _bookkeeping(settings, "state-1") == ({}, {"SKU-D": "3"})
    back.write_batch(_changes("SKU-D", range(1, 5)))
    back.close()
    assert Counter(_price_update_ids(settings)) == _once(("SKU-C", 7), ("SKU-D", 4))
    assert _bookkeeping(settings, "state-1") == ({}, {})


def test_a_missing_topic_is_named_while_delivery_waits_and_its_messages_arrive_once_created(
    stack: Settings,
) -> None:
    """A price-updates topic deleted under a running flow: the sink's wait names the topic
    (its log line and the blocked metric carry this), keeps the change queued, and delivers
    it exactly once when the topic exists again."""
    rid = uuid.uuid4().hex[:6]
    settings = stack.model_copy(update={"topic_prefix": f"{stack.topic_prefix}mt{rid}."})
    topic = settings.topic(PRICE_UPDATES)
    kafka = Delivering(lambda: delivering_producer(settings.kafka_bootstrap))
    (change,) = _changes("SKU-MISSING", range(1, 2))
    event = price_update_event(change)
    kafka.produce([Outgoing(topic, b"SKU-MISSING", event.model_dump_json().encode())])
    with pytest.raises(Pending, match=re.escape(topic)):
        kafka.deliver()
    ensure_topics(settings)
    try:
        for _ in range(30):  # each wait is up to FLUSH_S; librdkafka refreshes its metadata
            try:
                kafka.deliver()
                break
            except Pending:
                continue
        else:
            pytest.fail(f"not delivered once {topic} existed: {kafka.describe_waiting()}")
        assert kafka.describe_waiting() == "none"
        assert _price_update_ids(settings) == [event.event_id]
    finally:
        kafka.close()
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
