"""An answer sent before FastAPI's routing: the shared shape of ``api/hot_prices.py`` and
``api/hot_lists.py``.

A subclass says which requests it can answer from a cache (:meth:`HotPath.cached_body`) and,
optionally, which it can answer by reading them itself (:meth:`HotPath.answer`); every other
request goes to the app unchanged. It sits inside the rate limit, body limit and
request metrics (``api/main.py``) and names the route it answers for (``scope["route"]``),
so a hit is limited, counted and timed as the route's own answer.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.responses import JsonBytes


class HotPath:
    """Send :meth:`cached_body`'s bytes, or else :meth:`answer`'s response, when there is one;
    pass everything else to ``app``."""

    def __init__(self, app: ASGIApp, route: BaseRoute) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.cached_body(scope)
        response = JsonBytes(body) if body is not None else await self.answer(scope)
        if response is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        await response(scope, receive, send)

    def cached_body(self, scope: Scope) -> bytes | None:
        """The cached answer to send for this request, or None (then :meth:`answer`)."""
        raise NotImplementedError

    async def answer(self, scope: Scope) -> Response | None:
        """The answer read for a request the cache could not answer, or None to let the app
        answer it (by default, every such request)."""
        return None


def get_path_id(scope: Scope, prefix: str) -> str | None:
    """What follows ``prefix`` in the path of a plain ``GET`` (not validated); None for any
    other request, and for one served under a root path (its routes match another path)."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if not path.startswith(prefix) or len(path) == len(prefix):
        return None
    return path[len(prefix) :]
