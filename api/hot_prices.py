"""``GET /prices/{sku}`` answered without FastAPI's routing and dependency solving.

A price answer is rendered once and cached as bytes (``api/prices.py`` ``Priced``), so the
work of a request is the read itself (cache, else one pipelined Redis round trip and one
demand-model run) plus FastAPI's: matching the route through the included routers, solving
the route's dependencies, validating the path parameter and building the request. This
middleware does the read and sends its answer for every well-formed sku: a fresh cached
answer, one read from Redis (the route's :meth:`~api.prices.PriceService.answer`, cached for
the next request), a stale one while Redis is away, or the route's 404 for an unknown sku.
It hands to the app unchanged a sku the route's validation would refuse (the route answers
the 422), a Redis outage with no last-known answer (the route answers the 503), and every
other path and method.

It sits inside the rate limit, body limit and request metrics (``api/main.py``), and names
the route it serves for them (``scope["route"]``), so an answer is limited, counted and timed
as the route's own.

Under uvicorn, a fresh cached answer is sent earlier still, by the HTTP server's protocol as
soon as the request's headers are parsed (:class:`PriceHits`, ``api/server.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Scope

from api.hot_path import HotPath, get_path_id
from api.ids import valid_id
from api.metrics import ApiMetrics
from api.prices import PriceService, unknown_sku
from api.ratelimit import TokenBucket, client_address
from api.responses import JsonBytes
from infra.errors import ServiceUnavailable

PREFIX = "/prices/"


class CachedPrices(HotPath):
    """Serve ``GET /prices/{sku}`` for well-formed skus; pass everything else to ``app``."""

    def __init__(self, app: ASGIApp, prices: PriceService, route: BaseRoute) -> None:
        super().__init__(app, route)
        self.prices = prices

    def cached_body(self, scope: Scope) -> bytes | None:
        sku = get_path_id(scope, PREFIX)
        return None if sku is None else self.prices.cached(sku)

    async def answer(self, scope: Scope) -> Response | None:
        sku = get_path_id(scope, PREFIX)
        if sku is None or not valid_id(sku):  # the route's validation answers it
            return None
        try:
            body = await self.prices.answer(sku)
        except ServiceUnavailable:  # nothing to serve: the route answers the 503
            return None
        if body is None:  # as the route's HTTPException is answered (api/main.py)
            return JSONResponse({"detail": unknown_sku(sku)}, status_code=404)
        return JsonBytes(body)


@dataclass
class PriceHits:
    """The fresh cached answers of ``GET /prices/{sku}``, for the HTTP server to send itself.

    Even before FastAPI's routing, a cached price still cost the server's ASGI request (a
    scope, a task, the middleware stack, two socket writes): most of a hit's CPU
    (docs/scaling.md). The server's protocol (``api/server.py`` ``PriceHitsProtocol``) asks
    :meth:`fresh` and :meth:`spend` once a plain request's headers are parsed, sends the
    answer in one write with the headers the app would send, and tells :meth:`answered`. A
    hit is what the app answers: inside the client's rate limit, counted as a lookup and as a
    request of the route, with its latency. Anything else (a miss, a refused rate limit, the
    access log on) is left to the app.
    """

    prices: PriceService
    limit: TokenBucket | None
    metrics: ApiMetrics
    route: str
    access_log: bool
    # the latencies of answers sent and not yet counted
    _sent: list[float] = field(default_factory=list, init=False, repr=False)

    def fresh(self, path: str) -> bytes | None:
        """The cached answer to a plain ``GET`` of ``path``, if the cache holds it fresh
        (nothing spent or counted yet: :meth:`spend`, :meth:`answered`)."""
        if self.access_log or not path.startswith(PREFIX) or len(path) == len(PREFIX):
            return None
        return self.prices.fresh(path[len(PREFIX) :])

    def spend(self, scope: Mapping[str, object]) -> bool:
        """Spend one unit of ``scope``'s client's budget; False when the budget is spent (the
        app answers the 429, and a refused take spends nothing)."""
        return self.limit is None or self.limit.take(client_address(scope), time.monotonic())

    def answered(self, seconds: float, loop: asyncio.AbstractEventLoop) -> None:
        """Count a sent answer as the app counts its own: a hit, and a request of the route
        with its latency (``seconds``, up to its write).

        Counted once the event loop has read and answered the requests ready with it: the
        paced load's requests arrive in bursts (one per connection, docs/scaling.md), and the
        counting (~1.1 µs an answer, a sixth of a hit's Python) would otherwise delay every
        later answer of the burst. It runs at the loop's next turn, before the app handles any
        request read after it: a scrape of ``/metrics`` sees every answer sent before it.
        ``loop`` is the one serving the request (``asyncio.get_running_loop`` makes a
        ``getpid`` system call each time).
        """
        if not self._sent:
            loop.call_soon(self._count)
        self._sent.append(seconds)

    def _count(self) -> None:
        sent, self._sent = self._sent, []
        self.metrics.count_lookups("price", "hit", len(sent))
        for seconds in sent:
            self.metrics.observe_request(self.route, "GET", 200, seconds)
