"""Websockets: live price changes and each shopper's live recommendations."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Annotated, cast

from fastapi import APIRouter, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from api.auth import shopper_reader
from api.hub import Subscriber
from api.ratelimit import client_address
from api.routes.prices import parse_skus
from api.routes.recommendations import LIST_HELP, USER_PATTERN, recommendations_for
from api.state import AppState
from infra.stack.errors import ServiceUnavailable
from schemas.serving import ListName

router = APIRouter(tags=["live"])


async def _pump(
    websocket: WebSocket,
    sub: Subscriber,
    render: Callable[[str], Awaitable[str | None]] | None = None,
) -> None:
    """Send the subscriber's queue (through ``render``) until the client disconnects."""
    sent = websocket.app.state.tillflow.metrics.ws_sent.labels(channel=sub.channel)

    async def send() -> None:
        while True:
            message = await sub.queue.get()
            text = message if render is None else await render(message)
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


async def _deny(websocket: WebSocket, status_code: int, detail: str) -> None:
    """Refuse the handshake with an HTTP answer (``403``, ``429``…), as a plain request gets."""
    await websocket.send_denial_response(JSONResponse({"detail": detail}, status_code))


@asynccontextmanager
async def _slot(websocket: WebSocket, state: AppState) -> AsyncIterator[bool]:
    """One of the capped websocket slots for this client address; False (after a 429 or 503
    denial) when none is left."""
    client = client_address(websocket.scope)
    refused = state.ws_slots.acquire(client)
    if refused is not None:
        code = 429 if "this client" in refused else 503
        await _deny(websocket, code, refused)
        yield False
        return
    try:
        yield True
    finally:
        state.ws_slots.release(client)


@router.websocket("/ws/prices")
async def ws_prices(
    websocket: WebSocket,
    sku: Annotated[str | None, Query(description="Comma-separated skus; all when absent.")] = None,
) -> None:
    """Pushes every price change (a ``PriceUpdate`` JSON) as the flows publish it."""
    state = cast(AppState, websocket.app.state.tillflow)
    try:
        skus = None if sku is None else frozenset(parse_skus(sku))
    except HTTPException as exc:
        await websocket.close(code=1008, reason=str(exc.detail)[:120])
        return
    async with _slot(websocket, state) as granted:
        if not granted:
            return
        await websocket.accept()
        sub = state.hub.subscribe_prices(skus)
        try:
            await _pump(websocket, sub)
        finally:
            state.hub.unsubscribe(sub)


@router.websocket("/ws/recommendations/{user_id}")
async def ws_recommendations(
    websocket: WebSocket,
    user_id: str,
    list_name: Annotated[ListName, Query(alias="list", description=LIST_HELP)] = "mixed",
) -> None:
    """Sends the shopper's current list at once, then the new list each time the flows change it.

    Messages are ``Recommendations`` JSON, exactly what ``GET /recommendations/{user_id}``
    answers at that moment for the same ``list``. The same credentials are needed: the
    shopper's session (the storefront's cookie) or an admin token; the handshake is refused
    with 401 or 403.
    """
    state = cast(AppState, websocket.app.state.tillflow)
    if not re.fullmatch(USER_PATTERN, user_id):
        await websocket.close(code=1008, reason="malformed user id")
        return
    try:
        shopper_reader(websocket, user_id)
    except HTTPException as exc:
        await _deny(websocket, exc.status_code, str(exc.detail))
        return
    async with _slot(websocket, state) as granted:
        if granted:
            await _follow(websocket, state, user_id, list_name)


async def _follow(websocket: WebSocket, state: AppState, user_id: str, list_name: ListName) -> None:
    await websocket.accept()
    sub = state.hub.subscribe_recommendations(user_id)
    k = state.settings.recommendations_k

    async def render(_: str) -> str | None:
        try:
            return (await recommendations_for(state, user_id, k, list_name)).model_dump_json()
        except ServiceUnavailable:
            return None  # the next change after Redis is back brings the list

    sub.offer("initial")
    try:
        await _pump(websocket, sub, render)
    finally:
        state.hub.unsubscribe(sub, user_id)
