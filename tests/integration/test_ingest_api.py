"""``POST /events/{topic}`` against the real broker: accepted events land, bad ones do not."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from schemas.settings import Settings
from schemas.topics import INVENTORY, USER_ACTIVITY, Topic
from tests.credentials import admin_headers, producer_headers
from tests.unit.test_schemas import VALID

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(stack: Settings) -> Iterator[TestClient]:
    """A producer client allowed to write every input topic."""
    with TestClient(create_app(stack), headers=producer_headers(stack)) as c:
        yield c


def activity(i: int, **changes: object) -> dict[str, object]:
    return {**VALID["user-activity"], "event_id": f"api-{i}", "user_id": f"u-{i}", **changes}


def test_one_event_is_produced_keyed_by_user(
    client: TestClient, consume: Callable[..., list[tuple[bytes, dict[str, object]]]]
) -> None:
    r = client.post("/events/user-activity", json=activity(1))
    assert r.status_code == 202, r.text
    assert r.json() == {"topic": "user-activity", "accepted": 1, "event_ids": ["api-1"]}
    received = consume(USER_ACTIVITY, 1, where=lambda v: v["event_id"] == "api-1")
    assert received
    assert received[0][0] == b"u-1"


def test_an_array_is_produced_whole(
    client: TestClient, end_offsets: Callable[[Topic], int]
) -> None:
    before = end_offsets(INVENTORY)
    batch = [{**VALID["inventory"], "event_id": f"inv-{i}", "on_hand": i} for i in range(50)]
    r = client.post("/events/inventory", json=batch)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 50
    assert end_offsets(INVENTORY) - before == 50


def test_one_invalid_event_rejects_the_batch_with_field_errors(
    client: TestClient, end_offsets: Callable[[Topic], int]
) -> None:
    before = end_offsets(USER_ACTIVITY)
    batch = [activity(10), activity(11, action="purchase"), activity(12, event_time="noon")]
    r = client.post("/events/user-activity", json=batch)
    assert r.status_code == 422
    body = r.json()
    assert "2 invalid event(s)" in body["detail"]
    assert {(e["index"], e["field"]) for e in body["errors"]} == {(1, "action"), (2, "event_time")}
    assert end_offsets(USER_ACTIVITY) == before, "nothing may be produced from a rejected batch"


def test_duplicate_event_ids_in_one_request_are_refused(client: TestClient) -> None:
    r = client.post("/events/user-activity", json=[activity(20), activity(20)])
    assert r.status_code == 422
    assert r.json()["errors"][0]["message"] == "duplicate event_id in this request"


@pytest.mark.parametrize("topic", ["nope", "price-updates", "dead-letter"])
def test_unknown_or_output_topic_is_404(client: TestClient, topic: str) -> None:
    r = client.post(f"/events/{topic}", json=activity(30))
    assert r.status_code == 404
    assert "accepted: orders, user-activity, inventory, competitor-prices" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{nope", "not valid JSON"), (b"[]", "no events"), (b"3", "JSON object")],
)
def test_malformed_bodies_are_422(client: TestClient, body: bytes, message: str) -> None:
    r = client.post("/events/orders", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert message in str(r.json())


def test_too_many_events_is_413(stack: Settings) -> None:
    small = stack.model_copy(update={"max_events_per_request": 2})
    with TestClient(create_app(small), headers=producer_headers(small)) as c:
        r = c.post("/events/user-activity", json=[activity(i) for i in range(40, 43)])
    assert r.status_code == 413


def test_health_and_readiness(client: TestClient, stack: Settings) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz", headers=admin_headers(stack))
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    assert body["checks"]["kafka"] == "ok"
    assert body["checks"]["redis"] == "ok"


def test_openapi_documents_the_ingest_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/events/{topic}"]["post"]
    assert {"202", "401", "403", "404", "413", "415", "422", "429", "503"} <= set(post["responses"])


def test_unreachable_kafka_is_a_readable_503(stack: Settings) -> None:
    dead = stack.model_copy(update={"kafka_bootstrap": "127.0.0.1:1", "kafka_timeout_s": 1.0})
    with TestClient(create_app(dead), headers=producer_headers(dead)) as c:
        r = c.post("/events/user-activity", json=activity(50))
        ready = c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["service"] == "Kafka"
    assert "Kafka is not reachable at 127.0.0.1:1" in r.json()["detail"]
    assert ready.status_code == 503
    assert ready.json()["ready"] is False
