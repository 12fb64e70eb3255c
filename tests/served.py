"""The API served over real HTTP (uvicorn in a thread), for tests that need a socket: a
browser, Schemathesis, websockets from another process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from api.main import create_app
from schemas.settings import Settings
from tests.flow_processes import wait_until


@contextmanager
def serve_api(settings: Settings) -> Iterator[uvicorn.Server]:
    """The API of ``settings`` listening on ``settings.api_port`` until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=settings.api_port,
            log_level="warning",
            ws="websockets-sansio",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), "uvicorn to start", 60)
        assert server.started, "uvicorn stopped before it started serving"
        yield server
    finally:
        server.should_exit = True
        thread.join(10)
