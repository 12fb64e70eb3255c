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
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Scope

from api.hot_path import HotPath, get_path_id
from api.ids import valid_id
from api.prices import PriceService, unknown_sku
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
