"""Validate raw Kafka messages against the contract: accept, or reject with the reason."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime

from flows.records import Accepted, Rejected
from ingest.validation import InvalidEvent, parse_one
from schemas.events import DeadLetter
from schemas.headers import Headers, correlation_id
from schemas.topics import Topic


def parse_message(
    topics: Mapping[str, Topic],
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers | None = None,
) -> Accepted | Rejected:
    """``topics`` maps broker-side names to contract topics; the correlation id header is kept.

    >>> from schemas.topics import INVENTORY
    >>> hs = [("x-correlation-id", b"req-9")]
    >>> r = parse_message({"x.inventory": INVENTORY}, "x.inventory", 0, 7, b"A", b"{", hs)
    >>> type(r).__name__, r.topic, r.error.startswith("(event): not valid JSON"), r.correlation_id
    ('Rejected', 'inventory', True, 'req-9')
    """
    contract = topics[topic]
    raw = value or b""
    cid = correlation_id(headers)
    try:
        event = parse_one(contract, raw)
    except InvalidEvent as exc:
        return Rejected(contract.name, partition, offset, raw, str(exc), cid)
    return Accepted.of(contract.name, partition, offset, key, raw, event, cid)


def dead_letter(rejected: Rejected, now: datetime | None = None) -> DeadLetter:
    """The dead-letter event for a rejected message; its id is stable across replays."""
    try:
        raw, encoding = rejected.raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        raw, encoding = base64.b64encode(rejected.raw).decode(), "base64"
    return DeadLetter(
        event_id=f"dlq:{rejected.topic}:{rejected.partition}:{rejected.offset}",
        event_time=now or datetime.now(UTC),
        topic=rejected.topic,
        partition=rejected.partition,
        offset=rejected.offset,
        raw=raw,
        raw_encoding=encoding,
        error=rejected.error,
        correlation_id=rejected.correlation_id,
    )
