"""Serving one websocket: its capped slot, a refused handshake, and the loop that sends its
subscriber's queue (``api/hub.py``) until the client goes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

from fastapi import WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from api.hub import Subscriber
from api.ratelimit import client_address
from api.state import AppState


async def pump(
    websocket: WebSocket,
    state: AppState,
    sub: Subscriber,
    render: Callable[[str], Awaitable[str | None]] | None = None,
) -> None:
    """Send the subscriber's queue until the client disconnects: each text through
    ``render`` (None: not sent), or as it is without one."""
    sent = state.metrics.ws_sent.labels(channel=sub.channel)

    async def send() -> None:
        while True:
            queued = await sub.queue.get()
            text = queued if render is None else await render(queued)
            if text is not None:
                await websocket.send_text(text)
                sent.inc()

    async def receive() -> None:  # the client may send pings or nothing; we only watch for close
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return

    tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task


async def deny(websocket: WebSocket, status_code: int, detail: str) -> None:
    """Refuse the handshake with an HTTP answer (``403``, ``429``…), as a plain request gets."""
    await websocket.send_denial_response(JSONResponse({"detail": detail}, status_code))


@asynccontextmanager
async def slot(websocket: WebSocket, state: AppState) -> AsyncIterator[bool]:
    """One of the capped websocket slots for this client address; False (after a 429 or 503
    denial) when none is left."""
    client = client_address(websocket.scope)
    refused = state.ws_slots.acquire(client)
    if refused is not None:
        code = 429 if "this client" in refused else 503
        await deny(websocket, code, refused)
        yield False
        return
    try:
        yield True
    finally:
        state.ws_slots.release(client)
