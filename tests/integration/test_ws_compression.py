"""Websockets are served uncompressed under both servers, whatever the client offers.

A browser offers permessage-deflate on every websocket; a server that accepts it compresses
each message once per connection, so one price change fanned out to N clients costs N zlib
runs in the API's event loop (``api/server.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.sync.client import connect

from infra.readiness import require_redis
from schemas.settings import Settings
from tests.cli_processes import start_api
from tests.flow_processes import free_port

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_a_websocket_offered_compression_is_served_without_it(
    settings: Settings, tmp_path: Path, server: str
) -> None:
    require_redis(settings)  # the API's pub/sub listener
    chosen = settings.model_copy(update={"api_server": server, "api_port": free_port()})
    api = start_api(chosen, tmp_path / "api.log")
    try:
        with connect(f"ws://127.0.0.1:{chosen.api_port}/ws/prices", open_timeout=30) as ws:
            offered = ws.request.headers["Sec-WebSocket-Extensions"]  # type: ignore[union-attr]
            accepted = ws.response.headers.get("Sec-WebSocket-Extensions")  # type: ignore[union-attr]
            negotiated = ws.protocol.extensions
    finally:
        api.terminate()
        api.wait(60)
    assert "permessage-deflate" in offered
    assert accepted is None
    assert negotiated == []
