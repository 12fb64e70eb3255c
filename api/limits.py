"""Request limits: body size (413, before parsing), JSON media type (415), websocket slots.

>>> slots = ConnectionSlots(total=2, per_client=1)
>>> slots.acquire("a"), slots.acquire("a"), slots.acquire("b")
(None, 'too many websockets from this client (at most 1)', None)
>>> slots.acquire("c")
'too many websockets open (at most 2)'
>>> slots.release("a"); slots.acquire("c")

Behind ``N`` API workers each holds one share of both caps (``api/ratelimit.py`` ``share``):

>>> ConnectionSlots(total=10_000, per_client=50, shares=2).per_client_here
25
"""

from __future__ import annotations

from collections import Counter

import orjson
from fastapi import HTTPException, Request, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.ratelimit import share

JSON_TYPES = ("application/json",)


def too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, f"the request body exceeds {limit} bytes"
    )


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes: at once from ``Content-Length``, else while the body
    streams in (a chunked upload is cut as soon as it passes the limit)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            body = orjson.dumps({"detail": f"the request body exceeds {self.limit} bytes"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large(self.limit)
            return message

        await self.app(scope, counted, send)


def require_json(request: Request) -> None:
    """415 unless the request declares a JSON body (``application/json``, any charset)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send the body as application/json (got {media or 'no content type'})",
        )


class ConnectionSlots:
    """Open websockets, capped in total and per client address; with ``shares`` > 1 this
    process holds one share of each cap (the messages state the whole caps)."""

    def __init__(self, total: int, per_client: int, shares: int = 1) -> None:
        self.total = total
        self.per_client = per_client
        self.total_here = share(total, shares)
        self.per_client_here = share(per_client, shares)
        self._open: Counter[str] = Counter()
        self._count = 0

    def acquire(self, client: str) -> str | None:
        """Take a slot for ``client``; the reason when none is left."""
        if self._open[client] >= self.per_client_here:
            return f"too many websockets from this client (at most {self.per_client})"
        if self._count >= self.total_here:
            return f"too many websockets open (at most {self.total})"
        self._open[client] += 1
        self._count += 1
        return None

    def release(self, client: str) -> None:
        self._open[client] -= 1
        self._count -= 1
        if self._open[client] <= 0:
            del self._open[client]
