"""Validate raw JSON against a topic's model and the event-time policy; describe failures
readably. The API (``POST /events``), ``tillflow replay`` and the flows all validate here.

>>> from schemas.topics import INVENTORY
>>> policy = EventTimePolicy(clock=lambda: 1_767_571_200.0)  # 2026-01-05T00:00:00Z
>>> ok = validate_one(INVENTORY, {"event_id": "e", "event_time": "2026-01-05T00:00:00Z",
...                               "sku": "SKU-1", "store_id": "s", "on_hand": 3}, policy)
>>> ok.on_hand
3
>>> for on_hand, when in [(-1, "2026-01-05T00:00:00Z"), (1, "2026-01-05T01:00:00Z")]:
...     try:
...         validate_one(INVENTORY, {"event_id": "e", "event_time": when,
...                                  "sku": "SKU-1", "store_id": "s", "on_hand": on_hand}, policy)
...     except InvalidEvent as exc:
...         print(exc)
on_hand: Input should be greater than or equal to 0
event_time: in the future: 3600 s after now (the clock skew allowed is 300 s)
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from schemas.event_time import EventTimePolicy
from schemas.events import Event
from schemas.topics import Topic


class InvalidEvent(ValueError):
    """An event that does not satisfy the contract; ``errors`` lists each problem."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def describe(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as ``{"field", "message", "type"}`` dicts (no input echo, no urls)."""
    described = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        field = ".".join(str(p) for p in err["loc"]) or "(event)"
        described.append({"field": field, "message": err["msg"], "type": err["type"]})
    return described


def check_time(event: Event, policy: EventTimePolicy, received: float | None = None) -> Event:
    """``event`` if the policy accepts its event time; :class:`InvalidEvent` otherwise."""
    problem = policy.problem(event.event_time.timestamp(), received)
    if problem is not None:
        raise InvalidEvent([{"field": "event_time", "message": problem, "type": "future"}])
    return event


def validate_one(
    topic: Topic, data: object, policy: EventTimePolicy, received: float | None = None
) -> Event:
    """Validate decoded JSON for ``topic``; raise :class:`InvalidEvent` on any problem.

    ``received`` is when the message reached Kafka, if it came from there (epoch seconds).
    """
    if not isinstance(data, dict):
        raise InvalidEvent(
            [{"field": "(event)", "message": "an event must be a JSON object", "type": "type"}]
        )
    try:
        event = topic.model.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(describe(exc)) from None
    except Exception as exc:  # noqa: BLE001  (a validator failed otherwise: still the input's fault)
        message = f"{type(exc).__name__}: {exc}"
        raise InvalidEvent([{"field": "(event)", "message": message, "type": "invalid"}]) from None
    return check_time(event, policy, received)


def parse_one(
    topic: Topic, raw: bytes | str, policy: EventTimePolicy, received: float | None = None
) -> Event:
    """Decode and validate one message; raise :class:`InvalidEvent` if it is not acceptable."""
    try:
        event = topic.model.model_validate_json(raw)
    except Exception:  # noqa: BLE001  (decode separately to say precisely what is wrong)
        pass
    else:
        return check_time(event, policy, received)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(
            [{"field": "(event)", "message": f"not valid JSON: {exc}", "type": "json_invalid"}]
        ) from None
    return validate_one(topic, data, policy, received)


def encode(event: Event) -> bytes:
    """The canonical message value of a validated event (UTF-8 JSON)."""
    return event.model_dump_json().encode()
