"""Hostile messages for the fuzz benchmark: each one breaks the contract in one way.

Most are a simulator event with one field made hostile (an extreme or future event time, a
huge, negative, fractional or non-finite number, an over-long or control-character id, a
missing field, too many order lines); the rest are not events at all (random bytes, cut JSON,
JSON that is not an object, deep nesting, escaped lone surrogates) and, rarely, a message
close to Kafka's size limit whose dead letter must be cut to fit. Every kind is refused by
the contract, so each hostile message must end as exactly one dead letter.

>>> import random
>>> good = Emitted(USER_ACTIVITY, "u1", {"event_id": "e", "event_time": "2026-01-05T00:00:00Z",
...     "user_id": "u1", "session_id": "s", "action": "view", "sku": "SKU-1"}, 0.0)
>>> kind, topic, key, value = hostile(random.Random(1), good, 0)
>>> topic is USER_ACTIVITY and key == b"u1" and isinstance(value, bytes)
True
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas.events import MAX_ID_CHARS, MAX_ON_HAND, MAX_ORDER_LINES
from schemas.topics import USER_ACTIVITY, Topic  # noqa: F401  (USER_ACTIVITY: doctest)
from simulator.shop import Emitted

HUGE_EVERY = 25_000  # one message in this many is ~900 kB
LITERALS = ("NaN", "1e400", "-Infinity", "18446744073709551616")  # orjson cannot write these

EVENT_TIMES: list[Any] = [
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T00:00:00Z",
    "9999-12-31T23:59:59-01:00",
    "1999-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2026-01-05T00:00:00",
    "",
    "yesterday",
    "2026-02-30T00:00:00Z",
    1e300,
    -1,
    None,
    [],
    {},
]
IDS: list[Any] = ["x" * (MAX_ID_CHARS + 1), "a\nb", "\x00", "", "   ", 5, None, ["SKU-1"]]
NUMBERS: list[Any] = [-1, "many", None, [], *(f"<{n}>" for n in LITERALS)]
NOT_EVENTS = [b"[]", b"3", b'"event"', b"null", b"true", b"[{}]", b"", b"{}"]


def future_time() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


def _literal(payload: dict[str, Any]) -> bytes:
    raw = orjson.dumps(payload)
    for literal in LITERALS:
        raw = raw.replace(f'"<{literal}>"'.encode(), literal.encode())
    return raw


def _mutate(rng: random.Random, good: Emitted) -> tuple[str, bytes]:
    payload = dict(good.payload)
    numeric = [k for k in ("on_hand", "price") if k in payload]
    ids = [k for k in payload if k.endswith("_id") or k in ("sku", "competitor")]
    choice = rng.randrange(6)
    if choice == 0:
        payload["event_time"] = rng.choice([*EVENT_TIMES, future_time()])
        kind = "event_time"
    elif choice == 1 and ids:
        field = rng.choice(ids)
        if field == "sku" and payload.get("action") == "search":
            field = "user_id"
        payload[field] = rng.choice(IDS)
        kind = "id"
    elif choice == 2 and numeric == ["on_hand"]:
        payload["on_hand"] = rng.choice([*NUMBERS, MAX_ON_HAND + 1, 1.5])
        kind = "number"
    elif choice == 2 and numeric == ["price"]:
        payload["price"] = rng.choice([*NUMBERS, 0, 10**7, "0.00001"])
        kind = "number"
    elif choice == 2 and "lines" in payload:
        line = dict(payload["lines"][0])
        line[rng.choice(["quantity", "unit_price"])] = rng.choice([*NUMBERS, 0, 10**9])
        payload["lines"] = [line, *payload["lines"][1:]]
        kind = "number"
    elif choice == 3 and "lines" in payload:
        payload["lines"] = rng.choice([[], payload["lines"][:1] * (MAX_ORDER_LINES + 1)])
        kind = "lines"
    elif choice == 3 and "action" in payload:
        payload["action"] = rng.choice(["purchase", "", 7, "VIEW"])
        kind = "action"
    else:
        required = [k for k in ("event_id", "event_time", *ids) if payload.get(k) is not None]
        del payload[rng.choice(required)]
        kind = "missing"
    return kind, _literal(payload)


def hostile(rng: random.Random, good: Emitted, n: int) -> tuple[str, Topic, bytes, bytes]:
    """The ``n``-th hostile message, made from ``good``: (kind, topic, key, value)."""
    key = good.key.encode()
    if n % HUGE_EVERY == HUGE_EVERY - 1:  # raw control characters: JSON escapes grow them 6×
        value = orjson.dumps(good.payload)[:-1] + b',"note":"' + b"\x01" * 900_000 + b'"}'
        return "huge", good.topic, key, value
    roll = rng.random()
    if roll < 0.7:
        kind, value = _mutate(rng, good)
        return kind, good.topic, key, value
    if roll < 0.78:
        return "bytes", good.topic, key, rng.randbytes(rng.randrange(1, 200))
    if roll < 0.86:
        raw = orjson.dumps(good.payload)
        return "cut_json", good.topic, key, raw[: rng.randrange(1, len(raw) - 1)]
    if roll < 0.93:
        return "not_an_object", good.topic, key, rng.choice(NOT_EVENTS)
    if roll < 0.97:
        depth = rng.choice([600, 5_000])
        return "deep", good.topic, key, b"[" * depth + b"]" * depth
    value = orjson.dumps(good.payload).replace(b'"event_id":"', b'"event_id":"\\ud800', 1)
    return "surrogate", good.topic, key, value
