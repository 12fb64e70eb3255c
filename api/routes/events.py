"""``POST /events/{topic}``: validate events against the contract and produce them to Kafka."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel

from api.deps import State
from ingest.validation import InvalidEvent, validate_one
from schemas.events import Event
from schemas.topics import INPUT_TOPICS, input_topic

router = APIRouter(tags=["ingestion"])

_EXAMPLE_BODY = {
    "event_id": "3f0c2a4e-0d1c-4f1e-9a7b-1c2d3e4f5a6b",
    "event_time": "2026-01-05T10:15:00+00:00",
    "user_id": "u-000042",
    "session_id": "s-000000001",
    "action": "view",
    "sku": "SKU-00017",
}


class Accepted(BaseModel):
    """The events were validated and acknowledged by Kafka (acks=all)."""

    topic: str
    accepted: int
    event_ids: list[str]


class FieldError(BaseModel):
    index: int | None
    field: str
    message: str
    type: str


class Rejection(BaseModel):
    """Nothing was produced: these are the problems, by event index (for arrays) and field."""

    detail: str
    errors: list[FieldError]


@router.post(
    "/events/{topic}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    summary="Ingest one event or a JSON array of events",
    description=(
        "Validates the body against the topic's contract (see `tillflow schemas export`) "
        "and produces every event to Kafka with acks=all, keyed by the topic's entity. "
        "A batch is all-or-nothing: if any event is invalid, none is produced. "
        f"Input topics: {', '.join(t.name for t in INPUT_TOPICS)}."
    ),
    responses={
        404: {"description": "Not an input topic."},
        413: {"description": "More events than `TILLFLOW_MAX_EVENTS_PER_REQUEST`."},
        422: {"model": Rejection, "description": "Invalid JSON or events; nothing produced."},
        503: {
            "description": "Kafka did not acknowledge within `TILLFLOW_API_KAFKA_TIMEOUT_S` "
            "(or failed less than a second ago); retry with the same event ids."
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": [{"type": "object"}, {"type": "array"}]},
                    "example": _EXAMPLE_BODY,
                }
            },
        }
    },
)
async def ingest_events(topic: str, request: Request, state: State) -> Accepted:
    target = input_topic(topic)
    if target is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"unknown input topic {topic!r}; accepted: {', '.join(t.name for t in INPUT_TOPICS)}",
        )
    try:
        body: Any = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        problem = (None, "(body)", str(exc), "json_invalid")
        raise _rejection("the body is not valid JSON", [problem]) from None
    items = body if isinstance(body, list) else [body]
    is_batch = isinstance(body, list)
    if not items:
        raise _rejection("the array holds no events", [(None, "(body)", "empty array", "empty")])
    limit = state.settings.max_events_per_request
    if len(items) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{len(items)} events in one request; at most {limit} are accepted",
        )
    events: list[Event] = []
    problems: list[tuple[int | None, str, str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        index = i if is_batch else None
        try:
            event = validate_one(target, item)
        except InvalidEvent as exc:
            problems.extend((index, e["field"], e["message"], e["type"]) for e in exc.errors)
            continue
        if event.event_id in seen:
            problems.append((index, "event_id", "duplicate event_id in this request", "duplicate"))
        seen.add(event.event_id)
        events.append(event)
    if problems:
        count = len({p[0] for p in problems})
        raise _rejection(
            f"{count} invalid event(s) for topic {topic!r}; nothing produced", problems
        )
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    await state.kafka.send_all(target, events, correlation_id=request_id)
    return Accepted(topic=topic, accepted=len(events), event_ids=[e.event_id for e in events])


def _rejection(detail: str, problems: list[tuple[int | None, str, str, str]]) -> HTTPException:
    errors = [{"index": i, "field": f, "message": m, "type": t} for i, f, m, t in problems]
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, {"detail": detail, "errors": errors}
    )
