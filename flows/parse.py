"""Validate raw Kafka messages against the contract: accept, or reject with the reason.

Whatever arrives, :func:`parse_message` returns: a message the contract refuses is rejected
with the contract's reason, and any other failure (an exception no validator anticipated) is
rejected with the exception's type and message, so one message can never stop the flow.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime

import orjson

from flows.records import Accepted, Rejected
from ingest.validation import InvalidEvent, parse_one
from schemas.event_time import EventTimePolicy
from schemas.events import MAX_ERROR_CHARS, DeadLetter
from schemas.headers import Headers, correlation_id
from schemas.topics import Topic

ENVELOPE_MARGIN = 1_024  # bytes kept free for the Kafka record's own framing and headers


def parse_message(
    topics: Mapping[str, Topic],
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers | None = None,
    *,
    policy: EventTimePolicy,
    received: float | None = None,
) -> Accepted | Rejected:
    """``topics`` maps broker-side names to contract topics; the correlation id header is kept.

    ``received`` is the message's Kafka timestamp (epoch seconds), if it has one.

    >>> from schemas.topics import INVENTORY
    >>> topics, p = {"x.inventory": INVENTORY}, EventTimePolicy()
    >>> hs = [("x-correlation-id", b"req-9")]
    >>> r = parse_message(topics, "x.inventory", 0, 7, b"A", b"{", hs, policy=p)
    >>> type(r).__name__, r.topic, r.error.startswith("(event): not valid JSON"), r.correlation_id
    ('Rejected', 'inventory', True, 'req-9')
    >>> r = parse_message(topics, "x.inventory", 0, 8, b"A", b"{}", 42, policy=p)  # bad headers
    >>> r.error
    "TypeError: 'int' object is not iterable"
    """
    raw = value or b""
    name = topic
    cid = None
    try:
        contract = topics[topic]
        name = contract.name
        cid = correlation_id(headers)
        event = parse_one(contract, raw, policy, received)
        return Accepted.of(name, partition, offset, key, raw, event, cid)
    except InvalidEvent as exc:
        return Rejected(name, partition, offset, raw, str(exc), cid)
    except Exception as exc:  # noqa: BLE001  (any failure is this message's, not the flow's)
        return Rejected(name, partition, offset, raw, f"{type(exc).__name__}: {exc}", cid)


def received_at(timestamp: tuple[int, int] | None) -> float | None:
    """Epoch seconds of a Kafka message's timestamp ``(type, milliseconds)``, if it has one.

    >>> received_at((1, 1_767_571_200_000)), received_at((0, -1)), received_at(None)
    (1767571200.0, None, None)
    """
    if timestamp is None or timestamp[0] == 0 or timestamp[1] < 0:
        return None
    return timestamp[1] / 1000


def dead_letter(
    rejected: Rejected, max_bytes: int | None = None, now: datetime | None = None
) -> DeadLetter:
    """The dead-letter event for a rejected message; its id is stable across replays.

    When ``max_bytes`` is given, ``raw`` is cut so that the letter's JSON fits in it, and
    ``raw_truncated`` says so (``raw_size`` always holds the original size).

    >>> big = Rejected("orders", 0, 3, b'{"x": "' + b"\\x01" * 100_000 + b'"}', "bad")
    >>> letter = dead_letter(big, max_bytes=20_000)
    >>> letter.raw_truncated, letter.raw_size, len(encode_dead_letter(letter)) <= 20_000
    (True, 100009, True)
    """
    try:
        raw, encoding = rejected.raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        raw, encoding = base64.b64encode(rejected.raw).decode(), "base64"
    letter = DeadLetter(
        event_id=f"dlq:{rejected.topic}:{rejected.partition}:{rejected.offset}",
        event_time=now or datetime.now(UTC),
        topic=rejected.topic,
        partition=rejected.partition,
        offset=rejected.offset,
        raw=raw,
        raw_encoding=encoding,
        raw_size=len(rejected.raw),
        error=_cut(rejected.error, MAX_ERROR_CHARS) or "rejected",
        correlation_id=rejected.correlation_id,
    )
    if max_bytes is None:
        return letter
    return _fit(letter, rejected.raw, max_bytes - ENVELOPE_MARGIN)


def encode_dead_letter(letter: DeadLetter) -> bytes:
    """The message value of a dead letter (UTF-8 JSON)."""
    return letter.model_dump_json().encode()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fit(letter: DeadLetter, original: bytes, budget: int) -> DeadLetter:
    """``letter`` with ``raw`` shortened until its JSON holds in ``budget`` bytes."""
    size = len(encode_dead_letter(letter))
    if size <= budget:
        return letter
    overhead = size - len(orjson.dumps(letter.raw))
    room = max(0, budget - overhead - 2)  # the raw string's quotes
    if letter.raw_encoding == "base64":
        raw = base64.b64encode(original[: room * 3 // 4]).decode()
    else:
        raw = letter.raw
        while len(orjson.dumps(raw)) - 2 > room:  # JSON escapes may grow the text up to 6×
            raw = raw[: max(0, min(len(raw) - 1, len(raw) * room // (len(orjson.dumps(raw)))))]
    return letter.model_copy(update={"raw": raw, "raw_truncated": True})
