"""Hostile input through the real Kafka, flow and API: a message that once stopped the flow,
event times far in the future, and the latest-wins state and windows they tried to move.
The inventory messages also carry Kafka timestamps that go back along their partition (a
producer with its own clock), which once stopped the flow's merged input from reading.

Each bad message sits between good ones of the same key (so the same partition): the flow,
run to the end of the topics, must dead-letter it with the reason and still process the good
message after it; the product's features then show the good events only.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from bytewax.testing import run_main
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from fastapi.testclient import TestClient

from api.main import create_app
from featurestore.layout import sku_layout
from flows.dataflow import build_flow
from infra.stack.topics import delete_topics, ensure_topics
from schemas.events import DeadLetter
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, COMPETITOR_PRICES, DEAD_LETTER, INVENTORY, USER_ACTIVITY
from tests.credentials import producer_headers

pytestmark = pytest.mark.integration

SKU = "SKU-HOSTILE"
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)  # history: accepted, as backfills and replays are
YEAR_1 = "0001-01-01T00:30:00+01:00"
YEAR_9999 = "9999-12-31T00:00:00Z"


def stamp(t: datetime) -> str:
    return t.isoformat()


def inventory(eid: str, when: str, on_hand: int) -> dict[str, Any]:
    return {"event_id": eid, "event_time": when, "sku": SKU, "store_id": "s1", "on_hand": on_hand}


def competitor(eid: str, when: str, who: str, price: float) -> dict[str, Any]:
    return {"event_id": eid, "event_time": when, "sku": SKU, "competitor": who, "price": price}


def view(eid: str, when: str) -> dict[str, Any]:
    return {
        "event_id": eid,
        "event_time": when,
        "user_id": "u-hostile",
        "session_id": "s",
        "action": "view",
        "sku": SKU,
    }


def in_an_hour() -> str:
    return stamp(datetime.now(UTC) + timedelta(hours=1))


@dataclass
class Run:
    settings: Settings
    bad: dict[str, tuple[str, int]]  # event_id -> (topic, offset) of each bad message
    letters: list[DeadLetter]


def produce(
    settings: Settings,
    topic: Any,
    key: bytes,
    events: list[dict[str, Any]],
    timestamps_ms: list[int] | None = None,
) -> list[int]:
    """Write ``events`` straight to Kafka (no API, no validation), in order, with the given
    Kafka timestamps (default: the producer's clock); their offsets."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    offsets: list[int] = []

    def delivered(err: Any, msg: Message) -> None:
        assert err is None, err
        offsets.append(msg.offset())

    for i, event in enumerate(events):
        at = {"timestamp": timestamps_ms[i]} if timestamps_ms else {}
        value = orjson.dumps(event)
        producer.produce(settings.topic(topic), value, key, on_delivery=delivered, **at)
        producer.flush(30)  # one at a time: the offsets are in order
    return offsets


def read_all(settings: Settings, topic: Any) -> list[dict[str, Any]]:
    """Every message of ``topic``, up to its end offsets (synchronised on offsets)."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": uuid.uuid4().hex}
    )
    name = settings.topic(topic)
    parts = consumer.list_topics(name, timeout=10).topics[name].partitions
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1] for p in parts
    }
    consumer.assign([TopicPartition(name, p, 0) for p, end in ends.items() if end > 0])
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(out) < sum(ends.values()) and time.monotonic() < deadline:
        for msg in consumer.consume(100, 1.0):
            if msg.error() is None:
                out.append(orjson.loads(msg.value()))
    consumer.close()
    return out


@pytest.fixture(scope="module")
def flow_run(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    rid = uuid.uuid4().hex[:6]
    settings = stack.model_copy(
        update={
            "topic_prefix": f"{stack.topic_prefix}hostile{rid}.",
            "redis_prefix": f"{stack.redis_prefix}hostile{rid}:",
            "lake_dir": Path(tmp_path_factory.mktemp("lake")),
        }
    )
    ensure_topics(settings)
    key = SKU.encode()
    now_ms = int(time.time() * 1000)
    inv = produce(
        settings,
        INVENTORY,
        key,
        [
            inventory("inv-1", stamp(T0), 5),
            inventory("inv-year-1", YEAR_1, 999),
            inventory("inv-2", stamp(T0 + timedelta(minutes=1)), 7),
        ],
        timestamps_ms=[now_ms, now_ms - 3_600_000, now_ms - 7_200_000],  # going back
    )
    comp = produce(
        settings,
        COMPETITOR_PRICES,
        key,
        [
            competitor("cp-1", stamp(T0), "fair", 9.0),
            competitor("cp-9999", YEAR_9999, "evil", 0.01),
            competitor("cp-next-hour", in_an_hour(), "evil", 0.01),
            competitor("cp-2", stamp(T0 + timedelta(minutes=1)), "fair", 9.5),
        ],
    )
    views = produce(
        settings,
        USER_ACTIVITY,
        b"u-hostile",
        [
            view("v-1", stamp(T0)),
            view("v-9999", YEAR_9999),
            view("v-2", stamp(T0 + timedelta(minutes=1))),
        ],
    )
    bad = {
        "inv-year-1": (INVENTORY.name, inv[1]),
        "cp-9999": (COMPETITOR_PRICES.name, comp[1]),
        "cp-next-hour": (COMPETITOR_PRICES.name, comp[2]),
        "v-9999": (USER_ACTIVITY.name, views[1]),
    }
    run_main(build_flow(settings, {}, tail=False))
    letters = [DeadLetter.model_validate(v) for v in read_all(settings, DEAD_LETTER)]
    yield Run(settings, bad, letters)
    delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])


def sku_features(run: Run) -> dict[str, str]:
    layout = sku_layout(run.settings)
    selection = layout.select()
    client = redis.Redis.from_url(run.settings.redis_url)
    try:
        return selection.decode(client.hmget(layout.key(SKU), list(selection.fields)))
    finally:
        client.close()


def test_each_bad_message_is_one_dead_letter_with_its_reason(flow_run: Run) -> None:
    by_id = {orjson.loads(letter.raw)["event_id"]: letter for letter in flow_run.letters}
    assert set(by_id) == set(flow_run.bad)
    for event_id, (topic, offset) in flow_run.bad.items():
        letter = by_id[event_id]
        assert (letter.topic, letter.offset) == (topic, offset)
        assert letter.error.startswith("event_time: ")
        assert not letter.raw_truncated
    assert "must lie between 2000" in by_id["inv-year-1"].error
    assert "must lie between 2000" in by_id["v-9999"].error
    assert "in the future" in by_id["cp-next-hour"].error


def test_kafka_timestamps_that_go_back_do_not_stop_the_flow(flow_run: Run) -> None:
    consumer = Consumer(
        {"bootstrap.servers": flow_run.settings.kafka_bootstrap, "group.id": uuid.uuid4().hex}
    )
    name = flow_run.settings.topic(INVENTORY)
    parts = consumer.list_topics(name, timeout=10).topics[name].partitions
    consumer.assign([TopicPartition(name, p, 0) for p in parts])
    stamps: list[int] = []
    while len(stamps) < 3:
        stamps += [m.timestamp()[1] for m in consumer.consume(10, 1.0) if m.error() is None]
    consumer.close()
    assert stamps == sorted(stamps, reverse=True)  # the partition's timestamps go back
    assert sku_features(flow_run)["on_hand"] == "7"  # the run ended with its last message


def test_the_flow_goes_on_after_the_year_1_message(flow_run: Run) -> None:
    features = sku_features(flow_run)
    assert features["on_hand"] == "7"  # the good event after the bad one, same partition


def test_far_future_prices_leave_the_latest_price_alone(flow_run: Run) -> None:
    features = sku_features(flow_run)
    assert float(features["min_competitor_price"]) == 9.5  # the fair competitor's latest


def test_a_view_dated_9999_does_not_freeze_the_windows(flow_run: Run) -> None:
    features = sku_features(flow_run)
    assert features["views_5m"] == features["views_1h"] == features["views_24h"] == "2"
    expected = (T0 + timedelta(minutes=1)).isoformat(timespec="milliseconds")
    assert features["event_time"] == expected


@pytest.fixture(scope="module")
def client(stack: Settings) -> Iterator[TestClient]:
    """The API, called by a producer allowed to write every input topic."""
    with TestClient(create_app(stack), headers=producer_headers(stack)) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("competitor-prices", competitor("api-9999", YEAR_9999, "evil", 0.01), "must lie between"),
        ("competitor-prices", competitor("api-empty", "", "evil", 0.01), "datetime"),
        ("inventory", inventory("api-year-1", YEAR_1, 1), "must lie between"),
        ("competitor-prices", competitor("api-year-1", YEAR_1, "e", 1), "must lie between"),
    ],
)
def test_the_api_refuses_bad_event_times_with_422(
    client: TestClient, path: str, body: dict[str, Any], message: str
) -> None:
    r = client.post(f"/events/{path}", json=body)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert errors[0]["field"] == "event_time"
    assert message in errors[0]["message"]


def test_the_api_refuses_an_event_an_hour_ahead_as_in_the_future(client: TestClient) -> None:
    r = client.post("/events/competitor-prices", json=competitor("api-next", in_an_hour(), "e", 1))
    assert r.status_code == 422, r.text
    error = r.json()["errors"][0]
    assert (error["field"], error["type"]) == ("event_time", "future")
    assert error["message"].startswith("in the future")
    now = stamp(datetime.now(UTC))
    ok = client.post("/events/competitor-prices", json=competitor("api-now", now, "e", 1))
    assert ok.status_code == 202, ok.text
    old = client.post("/events/competitor-prices", json=competitor("api-old", stamp(T0), "e", 1))
    assert old.status_code == 202, old.text  # history is still accepted
