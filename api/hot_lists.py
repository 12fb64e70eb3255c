"""``GET /recommendations/{user_id}`` answered without FastAPI's routing and dependency
solving.

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

A request with no kept answer is answered here too when its query string is one of the
plain forms :func:`list_query` reads (``k`` as a number from 1 to ``MAX_K``, ``list`` as a
list's name, each at most once, nothing else): the same caller check, then the route's own
read (``RecommendationService.answer``, which keeps the answer). Any other query string,
an id the route's validation refuses and a Redis outage with nothing to serve go to the
route, which validates, answers the 422 or the 503.
"""

from __future__ import annotations

from typing import cast

from fastapi import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Scope

from api.auth import shopper_reader
from api.hot_path import HotPath, get_path_id
from api.ids import valid_id
from api.recommendations import MAX_K, RecommendationService
from api.responses import JsonBytes
from infra.errors import ServiceUnavailable
from schemas.serving import LIST_NAMES, ListName

PREFIX = "/recommendations/"
DEFAULT_K, DEFAULT_LIST = 10, "mixed"  # the route's defaults
PLAIN_K = {str(k): k for k in range(1, MAX_K + 1)}  # as the route reads them, no other spelling


def list_query(query: str) -> tuple[int, ListName] | None:
    """``k`` and the list name of a plain query string the route would accept; None for any
    other (the route then reads and validates it).

    >>> list_query(""), list_query("k=3&list=again"), list_query("list=discover")
    ((10, 'mixed'), (3, 'again'), (10, 'discover'))
    >>> [list_query(q) for q in ("k=0", "k=03", "k=3&k=4", "list=all", "x=1", "k")]
    [None, None, None, None, None, None]
    """
    k, name = DEFAULT_K, DEFAULT_LIST
    seen = set()
    for part in query.split("&") if query else ():
        key, equals, value = part.partition("=")
        if key in seen or not equals:
            return None
        seen.add(key)
        if key == "k" and value in PLAIN_K:
            k = PLAIN_K[value]
        elif key == "list" and value in LIST_NAMES:
            name = value
        else:
            return None
    return k, cast(ListName, name)


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

    async def answer(self, scope: Scope) -> Response | None:
        user_id = get_path_id(scope, PREFIX)
        if user_id is None or not valid_id(user_id):  # the route validates it
            return None
        query = scope["query_string"].decode("latin-1")
        asked = list_query(query)
        if asked is None:  # the route validates it
            return None
        try:
            shopper_reader(HTTPConnection(scope), user_id)
            return JsonBytes(await self.recommender.answer(user_id, *asked, query))
        except (HTTPException, ServiceUnavailable):  # the route answers the 401, 403 or 503
            return None
