"""Serving the API: uvicorn (httptools + uvloop) or Granian (Rust's hyper + uvloop), with one
or more worker processes (``TILLFLOW_API_SERVER``, ``TILLFLOW_API_WORKERS``).

Each worker is a process of its own that builds the app from the environment
(:func:`worker_app`): its own Redis clients, caches, pub/sub listener, model slots that
follow the registry's ``champion`` alias, and its share of every per-process budget (rate
limits, failed logins, websocket caps: ``api/state.py``). ``benchmarks/serving.py`` compares
the servers and worker counts in one run; ``docs/scaling.md`` says which one is the default
and why.

Under uvicorn, a fresh cached ``GET /prices/{sku}`` is answered by the HTTP protocol itself
(:class:`PriceHitsProtocol`): as soon as httptools has parsed a plain request's headers, its
answer is written in one write, with no ASGI scope, task or middleware stack; every other
request is uvicorn's as before. Figures: docs/scaling.md.

Websocket messages are sent uncompressed under both servers (Granian has no
permessage-deflate; uvicorn's is turned off). A compressed connection keeps its own zlib
stream, so a price change fanned out to N clients is compressed N times, each time in the
event loop that serves every request: with it on, one uvicorn worker spent ~55 % more CPU
per fan-out to 1,000 clients and held ~30 KB more per connection (docs/scaling.md), to save
a few hundred bytes a message on connections that are mostly idle.
"""

from __future__ import annotations

import asyncio
import os
import time

import httptools
from fastapi import FastAPI
from starlette.applications import Starlette
from uvicorn.protocols.http.httptools_impl import (
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from api.hot_prices import PriceHits
from api.main import create_app
from api.metrics import new_request_id
from observability.logs import configure_logging
from schemas.settings import Settings

# A request with any of these is left to uvicorn and the app: a body (and its limit), a
# client address or scheme rewritten by uvicorn's proxy headers middleware.
NOT_PLAIN = frozenset(
    (b"content-length", b"transfer-encoding", b"expect", b"x-forwarded-for", b"x-forwarded-proto")
)


def worker_app() -> FastAPI:
    """The app of one worker process, from ``TILLFLOW_*`` (logging configured here, since a
    worker started by the server does not run the command that configured its parent)."""
    settings = Settings()
    configure_logging(settings)
    return create_app(settings)


def price_hits(app: object) -> PriceHits | None:
    """The :class:`~api.hot_prices.PriceHits` of the app uvicorn serves (inside its
    middleware, such as the proxy headers one), if it has one."""
    while not isinstance(app, Starlette):
        app = getattr(app, "app", None)
        if app is None:
            return None
    return getattr(app.state, "price_hits", None)


class PriceHitsProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, sending a fresh cached price as soon as the request's
    headers are parsed.

    Only a plain request is answered here: ``GET``, HTTP/1.1 kept alive, no body, no upgrade,
    no proxy headers, no percent-escapes in the path, nothing of this connection's
    still being answered (so pipelined answers keep their order), the socket's buffer not
    full, and the app's :class:`~api.hot_prices.PriceHits` holding the answer. The bytes are
    uvicorn's own for the same answer: its status line and default headers, then the app's
    ``content-length``, ``content-type`` and ``x-request-id`` (``tests/integration``'s
    ``test_price_hits_protocol.py`` compares them).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.hits = price_hits(self.app)
        self.answered: RequestResponseCycle | None = None  # a finished cycle, made once
        self._encoded: tuple[list[tuple[bytes, bytes]] | None, bytes] = (None, b"")

    def on_headers_complete(self) -> None:
        start = time.perf_counter()
        body, request_id = self._hit()
        if body is None:
            super().on_headers_complete()
            return
        self.transport.write(
            b"".join(
                (
                    self._default_headers(),
                    b"content-length: %d\r\ncontent-type: application/json\r\n"
                    b"x-request-id: %s\r\n\r\n" % (len(body), request_id),
                    body,
                )
            )
        )
        self.cycle = self._answered_cycle()
        self.on_response_complete()
        assert self.hits is not None
        self.hits.answered(time.perf_counter() - start, self.loop)

    def _default_headers(self) -> bytes:
        """The status line and uvicorn's default headers (its date, once a second, and
        ``server``), encoded once for every answer until uvicorn replaces them."""
        defaults = self.server_state.default_headers
        if defaults is not self._encoded[0]:
            lines = (b"%s: %s\r\n" % (name.lower(), value) for name, value in defaults)
            self._encoded = (defaults, b"".join((STATUS_LINE[200], *lines)))
        return self._encoded[1]

    def _hit(self) -> tuple[bytes | None, bytes]:
        """The cached answer to send now and the request's id, or (None, b"")."""
        parser = self.parser
        if (
            self.hits is None
            or (self.cycle is not None and not self.cycle.response_complete)
            or self.flow.write_paused
            or self.root_path
            or self.limit_concurrency is not None
            or self.config.access_log  # uvicorn's own access log (api/server.py: off)
            or parser.get_method() != b"GET"
            or parser.get_http_version() != "1.1"
            or not parser.should_keep_alive()
            or parser.should_upgrade()
            or any(name in NOT_PLAIN for name, _ in self.headers)
        ):
            return None, b""
        path = httptools.parse_url(self.url).path
        body = None if b"%" in path else self.hits.fresh(path.decode("ascii"))
        if body is None:
            return None, b""
        request_id = new_request_id(self.headers).encode("latin-1")
        if HEADER_VALUE_RE.search(request_id) or not self.hits.spend(self.scope):
            return None, b""
        return body, request_id

    def _answered_cycle(self) -> RequestResponseCycle:
        """A cycle whose response is complete: what the parser's later callbacks of the request
        (its end), a pipelined request and a shutdown look at."""
        if self.answered is None:
            self.answered = RequestResponseCycle(
                scope=self.scope,
                transport=self.transport,
                flow=self.flow,
                logger=self.logger,
                access_logger=self.access_logger,
                access_log=self.access_log,
                default_headers=self.server_state.default_headers,
                message_event=asyncio.Event(),
                expect_100_continue=False,
                keep_alive=True,
                on_response=self.on_response_complete,
            )
            self.answered.response_complete = True
        return self.answered


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until stopped, with ``settings.api_server`` and ``settings.api_workers``.

    The workers read their settings from the environment, so the worker count is exported
    there first: every worker then divides its budgets by the same number.
    """
    os.environ["TILLFLOW_API_WORKERS"] = str(settings.api_workers)
    target = f"{worker_app.__module__}:{worker_app.__name__}"
    if settings.api_server == "granian":
        from granian import Granian
        from granian.constants import HTTPModes, Interfaces, Loops

        Granian(
            target,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=settings.api_workers,
            factory=True,
            loop=Loops.uvloop,
            http=HTTPModes.http1,
            websockets=True,
            log_enabled=False,  # the API logs each request itself (with its request id)
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        target,
        factory=True,
        host=host,
        port=port,
        workers=settings.api_workers,
        loop="uvloop",
        http=PriceHitsProtocol,
        log_config=None,
        access_log=False,  # the API logs each request itself (with its request id)
        ws="websockets-sansio",
        ws_per_message_deflate=False,  # see the module's docstring
    )
