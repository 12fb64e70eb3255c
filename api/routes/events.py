"""``POST /events/{topic}``: validate events against the contract and produce them to Kafka.

In order: the credential (401/403), the topic (404), the media type (415), the body size
(413, also enforced while the body streams in), the rate limit in events (429), then parsing
and validation (422). Nothing is parsed for a caller that may not write the topic.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, HTTPException, Request, Security, status
from pydantic import BaseModel

from api.auth import (
    WRITER,
    bearer,
    claims_of,
    event_writer,
    forbidden,
    session_cookie,
    unauthorized,
)
from api.deps import State
from api.limits import require_json
from api.problems import responses
from api.ratelimit import client_address
from api.state import AppState
from api.tokens import Claims
from ingest.validation import InvalidEvent, validate_one
from schemas.event_time import EventTimePolicy
from schemas.events import Event, UserActivity
from schemas.topics import INPUT_TOPICS, Topic, input_topic

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
        f"Input topics: {', '.join(t.name for t in INPUT_TOPICS)}. "
        "Needs a producer token whose scopes include `events:write:<topic>` "
        "(`POST /oauth/token`), or the storefront's shopper session for `user-activity` "
        "events of that shopper and session only. Rate limits count events, not requests."
    ),
    responses={
        **responses(401, 403, 404, 413, 415, 429, 503),
        422: {"model": Rejection, "description": "Invalid JSON or events; nothing produced."},
        503: {
            "description": "Kafka did not acknowledge within `TILLFLOW_API_KAFKA_TIMEOUT_S` "
            "(or failed less than a second ago); retry with the same event ids."
        },
    },
    dependencies=[Security(bearer), Security(session_cookie)],
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
    if claims_of(request, required=WRITER) is None:  # anonymous callers learn nothing more
        raise unauthorized(f"login required: {WRITER}")
    target = input_topic(topic)
    if target is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"unknown input topic {topic!r}; accepted: {', '.join(t.name for t in INPUT_TOPICS)}",
        )
    writer = await event_writer(request, target)
    require_json(request)
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
    _charge(state, request, writer, len(items))
    events = _validated(target, items, is_batch, state.settings.event_time_policy())
    if writer.kind == "shopper":
        _same_shopper(writer, events)
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    await state.kafka.send_all(target, events, correlation_id=request_id)
    return Accepted(topic=topic, accepted=len(events), event_ids=[e.event_id for e in events])


def _validated(
    target: Topic, items: list[Any], is_batch: bool, policy: EventTimePolicy
) -> list[Event]:
    """Every item as its topic's event, or a 422 naming each problem (by index in a batch)
    and producing nothing: one invalid or repeated event refuses the whole request."""
    events: list[Event] = []
    problems: list[tuple[int | None, str, str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        index = i if is_batch else None
        try:
            event = validate_one(target, item, policy)
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
            f"{count} invalid event(s) for topic {target.name!r}; nothing produced", problems
        )
    return events


def _charge(state: AppState, request: Request, writer: Claims, events: int) -> None:
    """Spend ``events`` units: a producer client's own budget, or the client address's public
    budget for a shopper session (sessions are free to start, addresses are not)."""
    if writer.kind == "producer":
        bucket, key, what = state.producer_limit, writer.subject, "producer client"
    else:
        bucket, key, what = state.public_limit, client_address(request.scope), "client"
    if bucket is None:
        return
    if events > bucket.burst:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{events} events in one request; at most {bucket.burst:g} per {what} at once",
        )
    now = time.monotonic()
    if not bucket.take(key, now, cost=events):
        wait = bucket.retry_after_s(key, now, cost=events)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit exceeded: at most {bucket.limit_per_s:g} events/s per {what}",
            headers={"Retry-After": str(wait)},
        )


def _same_shopper(session: Claims, events: list[Event]) -> None:
    """A shopper session posts its own activity only (its user id and session id)."""
    for event in events:
        if (
            not isinstance(event, UserActivity)
            or event.user_id != session.subject
            or event.session_id != session.session_id
        ):
            raise forbidden(
                "a shopper session posts its own activity only: "
                f"user_id {session.subject!r} and session_id {session.session_id!r}"
            )


def _rejection(detail: str, problems: list[tuple[int | None, str, str, str]]) -> HTTPException:
    errors = [{"index": i, "field": f, "message": m, "type": t} for i, f, m, t in problems]
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, {"detail": detail, "errors": errors}
    )
