"""Validate raw JSON against a topic's model and describe failures readably.

>>> from schemas.topics import INVENTORY
>>> ok = validate_one(INVENTORY, {"event_id": "e", "event_time": "2026-01-05T00:00:00Z",
...                               "sku": "SKU-1", "store_id": "s", "on_hand": 3})
>>> ok.on_hand
3
>>> try:
...     validate_one(INVENTORY, {"event_id": "e", "event_time": "2026-01-05T00:00:00Z",
...                              "sku": "SKU-1", "store_id": "s", "on_hand": -1})
... except InvalidEvent as exc:
...     print(exc)
on_hand: Input should be greater than or equal to 0
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

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


def validate_one(topic: Topic, data: object) -> Event:
    """Validate decoded JSON for ``topic``; raise :class:`InvalidEvent` on any problem."""
    if not isinstance(data, dict):
        raise InvalidEvent(
            [{"field": "(event)", "message": "an event must be a JSON object", "type": "type"}]
        )
    try:
        return topic.model.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(describe(exc)) from None


def parse_one(topic: Topic, raw: bytes | str) -> Event:
    """Decode and validate one message; raise :class:`InvalidEvent` if it is not acceptable."""
    try:
        return topic.model.model_validate_json(raw)
    except ValidationError:
        pass  # decode separately to say precisely what is wrong
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(
            [{"field": "(event)", "message": f"not valid JSON: {exc}", "type": "json_invalid"}]
        ) from None
    return validate_one(topic, data)


def encode(event: Event) -> bytes:
    """The canonical message value of a validated event (UTF-8 JSON)."""
    return event.model_dump_json().encode()
