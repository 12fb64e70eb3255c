"""Kafka message headers of the contract.

``x-correlation-id`` carries one id from where an event entered tillflow (the API's request
id, a simulator or replay run) through Kafka into the flows' logs and dead letters.

>>> correlation_headers("req-1")
[('x-correlation-id', b'req-1')]
>>> correlation_id([("other", b"x"), ("x-correlation-id", b"req-1")])
'req-1'
>>> correlation_id(None) is None
True
>>> len(correlation_id([("x-correlation-id", b"r" * 10_000)]))
128
"""

from __future__ import annotations

from collections.abc import Sequence

CORRELATION_ID = "x-correlation-id"
MAX_CHARS = 128  # a longer header value is cut: the id travels into logs and dead letters

Headers = Sequence[tuple[str, bytes | str | None]]


def correlation_headers(correlation_id: str | None) -> list[tuple[str, bytes]]:
    """The headers that carry ``correlation_id`` (none when it is None)."""
    return [] if correlation_id is None else [(CORRELATION_ID, correlation_id.encode())]


def correlation_id(headers: Headers | None) -> str | None:
    """The correlation id in a message's headers, if any (the last one wins), cut to 128
    characters."""
    found = None
    for name, value in headers or ():
        if name == CORRELATION_ID and value is not None:
            found = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return None if found is None else found[:MAX_CHARS]
