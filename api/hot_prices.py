"""``GET /prices/{sku}`` answered from the price cache without FastAPI's routing and
dependency solving.

A cached price answer is sent as it is (``api/prices.py`` ``Priced``), so on a hit the work
left is FastAPI's: matching the route through the included routers, solving the route's
dependencies, validating the path parameter and building the request. This middleware
answers only such hits, and hands every other request to the app unchanged: a miss, an
unknown or malformed sku, a stale or re-rendered answer, any other path or method.

A hit needs no validation of its own: the cache only holds skus that a route validated
and Redis knew when they were read (``api/cache.py``). It sits inside the rate limit, body
limit and request metrics (``api/main.py``), and names the route it serves for them
(``scope["route"]``), so a hit is limited, counted and timed as the route's own answer.
"""

from __future__ import annotations

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.prices import PriceService
from api.responses import JsonBytes

PREFIX = "/prices/"


class CachedPrices:
    """Serve fresh cached ``GET /prices/{sku}`` answers; pass everything else to ``app``."""

    def __init__(self, app: ASGIApp, prices: PriceService, route: BaseRoute) -> None:
        self.app = app
        self.prices = prices
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self._hit(scope)
        if body is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        await JsonBytes(body)(scope, receive, send)

    def _hit(self, scope: Scope) -> bytes | None:
        sku = get_path_id(scope, PREFIX)
        return None if sku is None else self.prices.cached(sku)


def get_path_id(scope: Scope, prefix: str) -> str | None:
    """What follows ``prefix`` in the path of a plain ``GET`` (not validated); None for any
    other request, and for one served under a root path (its routes match another path)."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if not path.startswith(prefix) or len(path) == len(prefix):
        return None
    return path[len(prefix) :]
