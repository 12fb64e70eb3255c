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
from starlette.types import ASGIApp, Scope

from api.hot_path import HotPath, get_path_id
from api.prices import PriceService

PREFIX = "/prices/"


class CachedPrices(HotPath):
    """Serve fresh cached ``GET /prices/{sku}`` answers; pass everything else to ``app``."""

    def __init__(self, app: ASGIApp, prices: PriceService, route: BaseRoute) -> None:
        super().__init__(app, route)
        self.prices = prices

    def cached_body(self, scope: Scope) -> bytes | None:
        sku = get_path_id(scope, PREFIX)
        return None if sku is None else self.prices.cached(sku)
