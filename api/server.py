"""Serving the API: uvicorn (httptools + uvloop) or Granian (Rust's hyper + uvloop), with one
or more worker processes (``TILLFLOW_API_SERVER``, ``TILLFLOW_API_WORKERS``).

Each worker is a process of its own that builds the app from the environment
(:func:`worker_app`): its own Redis clients, caches, pub/sub listener, model slots that
follow the registry's ``champion`` alias, and its share of every per-process budget (rate
limits, failed logins, websocket caps: ``api/state.py``). ``benchmarks/serving.py`` compares
the servers and worker counts in one run; ``docs/scaling.md`` says which one is the default
and why.

Websocket messages are sent uncompressed under both servers (Granian has no
permessage-deflate; uvicorn's is turned off). A compressed connection keeps its own zlib
stream, so a price change fanned out to N clients is compressed N times, each time in the
event loop that serves every request: with it on, one uvicorn worker spent ~55 % more CPU
per fan-out to 1,000 clients and held ~30 KB more per connection (docs/scaling.md), to save
a few hundred bytes a message on connections that are mostly idle.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from api.main import create_app
from observability.logs import configure_logging
from schemas.settings import Settings


def worker_app() -> FastAPI:
    """The app of one worker process, from ``TILLFLOW_*`` (logging configured here, since a
    worker started by the server does not run the command that configured its parent)."""
    settings = Settings()
    configure_logging(settings)
    return create_app(settings)


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
        http="httptools",
        log_config=None,
        access_log=False,  # the API logs each request itself (with its request id)
        ws="websockets-sansio",
        ws_per_message_deflate=False,  # see the module's docstring
    )
