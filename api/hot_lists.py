"""``GET /recommendations/{user_id}`` answered from the kept answers without FastAPI's
routing and dependency solving.

The route keeps each list it answers, as sent, with the shopper's cached read and under the
raw query string it validated (``api/recommendations.py`` ``Answer``); while every cached
input the list was computed from is still the fresh cached value, the route would compute
the same list, so this middleware sends the kept bytes instead: no routing, no dependency or
parameter validation, no ranking, no serialisation. It still checks the caller as the route
does (that shopper's session or an admin token, ``api.auth.shopper_reader``): a caller the
route would refuse goes to the route, which answers the 401 or 403. Every other request —
another query string, an answer whose inputs changed or expired, a stale answer (never kept)
— goes to the app unchanged.

Like ``api/hot_prices.py`` it sits inside the rate limit, body limit and request metrics
(``api/main.py``) and names the route it serves (``scope["route"]``); an answer sent again is
counted as a cache hit and logged as served, as the route does.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Scope

from api.auth import shopper_reader
from api.hot_path import HotPath, get_path_id
from api.recommendations import RecommendationService

PREFIX = "/recommendations/"


class CachedLists(HotPath):
    """Send kept ``GET /recommendations/{user_id}`` answers; pass everything else to ``app``."""

    def __init__(self, app: ASGIApp, recommender: RecommendationService, route: BaseRoute) -> None:
        super().__init__(app, route)
        self.recommender = recommender

    def cached_body(self, scope: Scope) -> bytes | None:
        user_id = get_path_id(scope, PREFIX)
        if user_id is None:
            return None
        query = scope["query_string"].decode("latin-1")
        kept = self.recommender.cached(user_id, query)
        if kept is None:
            return None
        try:
            shopper_reader(HTTPConnection(scope), user_id)
        except HTTPException:  # the route refuses it, with its own answer
            return None
        return self.recommender.send_again(kept)
