"""The event contract: what each topic accepts and what it refuses, and why."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ingest.validation import InvalidEvent, parse_one, validate_one
from schemas.event_time import EventTimePolicy
from schemas.events import Order
from schemas.topics import (
    ALL_TOPICS,
    COMPETITOR_PRICES,
    DEAD_LETTER,
    INPUT_TOPICS,
    INVENTORY,
    ORDERS,
    PRICE_UPDATES,
    USER_ACTIVITY,
    Topic,
    by_name,
    input_topic,
)

BASE = {"event_id": "e-1", "event_time": "2026-01-05T10:00:00+00:00"}
POLICY = EventTimePolicy()

VALID: dict[str, dict[str, Any]] = {
    "orders": {
        **BASE,
        "order_id": "o-1",
        "user_id": "u-1",
        "store_id": "store-01",
        "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": 9.99}],
    },
    "user-activity": {
        **BASE,
        "user_id": "u-1",
        "session_id": "s-1",
        "action": "view",
        "sku": "SKU-1",
    },
    "inventory": {**BASE, "sku": "SKU-1", "store_id": "store-01", "on_hand": 0},
    "competitor-prices": {**BASE, "sku": "SKU-1", "competitor": "acme", "price": "12.50"},
    "price-updates": {
        **BASE,
        "sku": "SKU-1",
        "price": 9.5,
        "previous_price": 10,
        "reason": "elasticity",
        "model_version": "elasticity-1",
    },
    "recommendations-served": {
        **BASE,
        "user_id": "u-1",
        "list_name": "discover",
        "served_by": "ranker",
        "model_version": "ranker:v3",
        "items": [
            {"sku": "SKU-1", "source": "similar", "score": 0.4},
            {"sku": "SKU-2", "source": "popular", "score": 0.1},
        ],
    },
    "dead-letter": {
        **BASE,
        "topic": "orders",
        "partition": 0,
        "offset": 7,
        "raw": "{",
        "error": "not valid JSON",
    },
}


def with_(topic: str, **changes: Any) -> dict[str, Any]:
    event = dict(VALID[topic])
    for k, v in changes.items():
        if v is ...:
            event.pop(k, None)
        else:
            event[k] = v
    return event


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=lambda t: t.name)
def test_valid_example_is_accepted_and_round_trips(topic: Topic) -> None:
    event = validate_one(topic, VALID[topic.name], POLICY)
    again = parse_one(topic, event.model_dump_json(), POLICY)
    assert again == event


ACCEPTED = [
    ("offset is normalised to UTC", "inventory", {"event_time": "2026-01-05T12:00:00+02:00"}),
    ("Z suffix", "inventory", {"event_time": "2026-01-05T10:00:00Z"}),
    ("decimal price as string", "competitor-prices", {"price": "0.01"}),
    ("search without sku", "user-activity", {"action": "search", "sku": None, "query": "milk"}),
    ("search with sku omitted", "user-activity", {"action": "search", "sku": ..., "query": "tea"}),
    ("unknown extra field ignored", "inventory", {"cashier": "x"}),
    ("every action", "user-activity", {"action": "wishlist"}),
    ("zero stock", "inventory", {"on_hand": 0}),
]


@pytest.mark.parametrize(("case", "topic", "changes"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted(case: str, topic: str, changes: dict[str, Any]) -> None:
    validate_one(by_name(topic), with_(topic, **changes), POLICY)


REJECTED = [
    (
        "naive event_time",
        "inventory",
        {"event_time": "2026-01-05T10:00:00"},
        "event_time",
        "timezone",
    ),
    ("garbage event_time", "inventory", {"event_time": "yesterday"}, "event_time", "datetime"),
    ("missing event_id", "inventory", {"event_id": ...}, "event_id", "Field required"),
    ("empty event_id", "inventory", {"event_id": ""}, "event_id", "at least 1"),
    ("negative stock", "inventory", {"on_hand": -1}, "on_hand", "greater than or equal to 0"),
    ("fractional stock", "inventory", {"on_hand": 1.5}, "on_hand", "integer"),
    ("stock as string", "inventory", {"on_hand": "3"}, "on_hand", "integer"),
    ("zero competitor price", "competitor-prices", {"price": 0}, "price", "greater than 0"),
    ("NaN price", "competitor-prices", {"price": "NaN"}, "price", "finite"),
    ("unknown action", "user-activity", {"action": "purchase"}, "action", "view"),
    ("view without sku", "user-activity", {"sku": None}, "(event)", "sku is required"),
    (
        "search with sku",
        "user-activity",
        {"action": "search", "query": "x"},
        "(event)",
        "sku must be null",
    ),
    (
        "search without query",
        "user-activity",
        {"action": "search", "sku": None},
        "(event)",
        "query is required",
    ),
    ("query on a view", "user-activity", {"query": "x"}, "(event)", "only allowed"),
    ("order without lines", "orders", {"lines": []}, "lines", "at least 1"),
    (
        "served item of an unknown source",
        "recommendations-served",
        {"items": [{"sku": "SKU-1", "source": "guess", "score": 1.0}]},
        "items.0.source",
        "again",
    ),
    ("unknown served list", "recommendations-served", {"list_name": "all"}, "list_name", "mixed"),
    (
        "zero quantity",
        "orders",
        {"lines": [{"sku": "a", "quantity": 0, "unit_price": 1}]},
        "lines.0.quantity",
        "greater than 0",
    ),
    (
        "negative unit price",
        "orders",
        {"lines": [{"sku": "a", "quantity": 1, "unit_price": -2}]},
        "lines.0.unit_price",
        "greater than 0",
    ),
    ("missing store", "orders", {"store_id": ...}, "store_id", "Field required"),
]


@pytest.mark.parametrize(
    ("case", "topic", "changes", "field", "message"), REJECTED, ids=[c[0] for c in REJECTED]
)
def test_rejected_with_a_clear_reason(
    case: str, topic: str, changes: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_one(by_name(topic), with_(topic, **changes), POLICY)
    fields = {e["field"]: e["message"] for e in info.value.errors}
    assert field in fields, info.value.errors
    assert message in fields[field]


def test_non_object_and_non_json_are_rejected() -> None:
    with pytest.raises(InvalidEvent, match="must be a JSON object"):
        validate_one(INVENTORY, [1, 2], POLICY)
    with pytest.raises(InvalidEvent, match="not valid JSON"):
        parse_one(INVENTORY, b"{not json", POLICY)


def test_money_keeps_decimal_precision_and_serialises_as_number() -> None:
    order = validate_one(ORDERS, VALID["orders"], POLICY)
    assert isinstance(order, Order)
    assert order.lines[0].unit_price == Decimal("9.99")
    assert '"unit_price":9.99' in order.model_dump_json()


def test_event_time_is_utc() -> None:
    event = validate_one(
        INVENTORY, with_("inventory", event_time="2026-01-05T12:00:00+02:00"), POLICY
    )
    assert event.event_time == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert event.event_time.utcoffset() is not None


def test_topics_keys_and_directions() -> None:
    assert [t.name for t in INPUT_TOPICS] == [
        "orders",
        "user-activity",
        "inventory",
        "competitor-prices",
    ]
    keys = {t.name: t.key_field for t in ALL_TOPICS}
    assert keys == {
        "orders": "order_id",
        "user-activity": "user_id",
        "inventory": "sku",
        "competitor-prices": "sku",
        "price-updates": "sku",
        "dead-letter": None,
        "recommendations-served": "user_id",
    }
    assert input_topic("price-updates") is None
    assert input_topic("recommendations-served") is None  # the API writes it, nobody else
    assert input_topic("nope") is None
    assert input_topic("orders") is ORDERS
    event = validate_one(USER_ACTIVITY, VALID["user-activity"], POLICY)
    assert USER_ACTIVITY.key_of(event) == b"u-1"
    assert DEAD_LETTER.key_of(validate_one(DEAD_LETTER, VALID["dead-letter"], POLICY)) is None
    assert PRICE_UPDATES.qualified("shop1.") == "shop1.price-updates"
    assert COMPETITOR_PRICES.direction == "in"
