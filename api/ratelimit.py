"""Rate limiting for the public routes: a token bucket per client address.

>>> b = TokenBucket(rate_per_s=1.0, burst=2)
>>> [b.take("c", now=0.0) for _ in range(3)]
[True, True, False]
>>> b.take("c", now=1.0), b.take("other", now=1.0)
(True, True)
"""

from __future__ import annotations

import time

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send


class TokenBucket:
    """``burst`` requests at once, refilled at ``rate_per_s``; one bucket per key."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 50_000) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def take(self, key: str, now: float) -> bool:
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._buckets.clear()  # a flood of new clients: start over rather than grow
        self._buckets[key] = (tokens, now)
        return allowed

    def retry_after_s(self) -> int:
        return max(1, int(1.0 / self.rate + 0.999)) if self.rate > 0 else 1


class RateLimitMiddleware:
    """429 with ``Retry-After`` once a client exceeds its budget on a public path prefix."""

    def __init__(self, app: ASGIApp, bucket: TokenBucket, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.bucket = bucket
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else "unknown"
        if self.bucket.take(key, time.monotonic()):
            await self.app(scope, receive, send)
            return
        body = orjson.dumps(
            {"detail": f"rate limit exceeded: at most {self.bucket.rate:g} requests/s per client"}
        )
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", str(self.bucket.retry_after_s()).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
