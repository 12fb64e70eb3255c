"""Rate limiting: token buckets keyed by client (address, producer client, user).

A request costs what it carries: one for a read, ``n`` for a batch of ``n`` events. Memory is
bounded: past ``max_keys`` the least recently seen key's bucket is dropped (that client starts
again with a full bucket), never every bucket at once.

>>> b = TokenBucket(rate_per_s=1.0, burst=2)
>>> [b.take("c", now=0.0) for _ in range(3)]
[True, True, False]
>>> b.retry_after_s("c", now=0.0), b.take("c", now=1.0), b.take("other", now=1.0)
(1, True, True)
>>> b.take("big", now=0.0, cost=3), b.retry_after_s("big", now=0.0, cost=2)
(False, 0)
>>> small = TokenBucket(rate_per_s=1.0, burst=1, max_keys=2)
>>> [small.take(k, now=0.0) for k in "abca"], len(small)
([True, True, True, True], 2)

Behind ``N`` API worker processes each worker holds one share of the budget
(:func:`share`), so a client spreading requests over the workers still gets at most the
configured limit; one worker alone grants a client ``1/N`` of it:

>>> one_of_two = TokenBucket(rate_per_s=10.0, burst=4, shares=2)
>>> [one_of_two.take("c", now=0.0) for _ in range(3)], one_of_two.rate, one_of_two.limit_per_s
([True, True, False], 5.0, 10.0)
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send


def share(budget: int, shares: int) -> int:
    """One of ``shares`` processes' part of a whole ``budget`` of units: rounded down, so the
    parts never add up to more than the budget, but at least one.

    >>> share(100, 2), share(5, 2), share(1, 4)
    (50, 2, 1)
    """
    return max(1, budget // shares)


class TokenBucket:
    """``burst`` units at once, refilled at ``rate_per_s``; one bucket per key, LRU-bounded.

    With ``shares`` > 1 this process holds one share of that budget (``rate_per_s / shares``,
    ``share(burst, shares)``); ``limit_per_s`` stays the whole rate, as clients are told it.
    """

    def __init__(
        self, rate_per_s: float, burst: int, max_keys: int = 50_000, *, shares: int = 1
    ) -> None:
        self.limit_per_s = rate_per_s
        self.rate = rate_per_s / shares
        self.burst = float(share(burst, shares))
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, refill

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - last) * self.rate)

    def take(self, key: str, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` units of ``key``'s budget if it holds them."""
        tokens = self._tokens(key, now)
        allowed = tokens >= cost
        self._buckets[key] = (tokens - cost if allowed else tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after_s(self, key: str, now: float, cost: float = 1.0) -> int:
        """Whole seconds until ``key`` can spend ``cost`` (0: it can now)."""
        missing = cost - self._tokens(key, now)
        if missing <= 0:
            return 0
        return max(1, math.ceil(missing / self.rate)) if self.rate > 0 else 3_600

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass
class LoginThrottle:
    """Failed logins per client address and per user name; both must have budget left."""

    by_client: TokenBucket
    by_user: TokenBucket

    @classmethod
    def create(cls, burst: int, per_min: float, max_keys: int, shares: int = 1) -> LoginThrottle:
        return cls(
            TokenBucket(per_min / 60.0, burst, max_keys, shares=shares),
            TokenBucket(per_min / 60.0, burst, max_keys, shares=shares),
        )

    def retry_after_s(self, client: str, user: str, now: float) -> int:
        """0 when an attempt may be checked now, else the seconds to wait.

        >>> t = LoginThrottle.create(burst=2, per_min=6.0, max_keys=10)
        >>> t.failed("1.2.3.4", "admin", now=0.0); t.failed("5.6.7.8", "admin", now=0.0)
        >>> t.retry_after_s("9.9.9.9", "admin", now=0.0), t.retry_after_s("1.2.3.4", "bob", 0.0)
        (10, 0)
        """
        return max(self.by_client.retry_after_s(client, now), self.by_user.retry_after_s(user, now))

    def failed(self, client: str, user: str, now: float) -> None:
        self.by_client.take(client, now)
        self.by_user.take(user, now)


def client_address(scope: Mapping[str, object]) -> str:
    """The client's address in an ASGI scope (or in uvicorn's scope being built)."""
    client = scope.get("client")
    return str(client[0]) if isinstance(client, tuple | list) and client else "unknown"


def too_many(detail: str, retry_after_s: int) -> tuple[dict[str, str], bytes]:
    """Headers and body of a 429 answer."""
    return {"retry-after": str(retry_after_s)}, orjson.dumps({"detail": detail})


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
        key, now = client_address(scope), time.monotonic()
        if self.bucket.take(key, now):
            await self.app(scope, receive, send)
            return
        headers, body = too_many(
            f"rate limit exceeded: at most {self.bucket.limit_per_s:g} requests/s per client",
            self.bucket.retry_after_s(key, now),
        )
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [(b"content-type", b"application/json")]
                + [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})
