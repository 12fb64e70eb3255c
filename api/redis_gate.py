"""The API's Redis access: bounded waits, and a short pause after a failure.

When a call (every command it sends, one pipeline or several) is not answered within
``TILLFLOW_API_REDIS_TIMEOUT_S`` the gate raises
``ServiceUnavailable("Redis", ...)`` and, for the next second, fails at once instead of
waiting again, so a Redis outage costs one timeout per second rather than one per request.
Callers serve last-known values (flagged ``stale``) or answer 503 naming Redis. A Redis
Cluster that no node answers for is such an outage too (the client then cannot learn its
slot map).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisClusterException, RedisError

from infra.clients import AsyncRedis, async_redis_client
from infra.errors import ServiceUnavailable
from schemas.settings import Settings

T = TypeVar("T")

PAUSE_S = 1.0


class RedisGate:
    """Async Redis clients plus the outage pause; created in the API's lifespan.

    ``client`` decodes replies to text; ``raw`` returns bytes, for reads that include the
    Feast online store's binary fields (featurestore/layout.py).
    """

    def __init__(self, settings: Settings) -> None:
        self.url = settings.redis_url
        self.timeout_s = settings.api_redis_timeout_s
        self.client = self._client(settings, decode=True)
        self.raw = self._client(settings, decode=False)
        self._down_until = 0.0

    @staticmethod
    def _client(settings: Settings, *, decode: bool) -> AsyncRedis:
        # No timer per command: run() bounds each call as a whole (one timer per call, where
        # redis-py's socket timeout costs a task per send and a timer per reply read).
        return async_redis_client(
            settings,
            decode_responses=decode,
            timeout_s=settings.api_redis_timeout_s,
            command_timeouts=False,
        )

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    async def run(self, call: Callable[[AsyncRedis], Awaitable[T]], *, raw: bool = False) -> T:
        """Run ``call(client)`` (``raw``: the bytes client); ServiceUnavailable naming Redis
        when it fails or is paused."""
        if self.down:
            raise ServiceUnavailable("Redis", self.url, "it failed less than a second ago")
        try:
            async with asyncio.timeout(self.timeout_s):
                return await call(self.raw if raw else self.client)
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            self._down_until = time.monotonic() + PAUSE_S
            raise ServiceUnavailable("Redis", self.url, f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        await self.client.aclose()
        await self.raw.aclose()
