"""Websockets: live price changes and each shopper's live recommendations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, WebSocket

from api.auth import shopper_reader
from api.deps import Recommender, State
from api.ids import parse_skus, valid_id
from api.live import deny, pump, slot
from api.recommendations import LIST_HELP, RecommendationService
from api.state import AppState
from infra.errors import ServiceUnavailable
from schemas.serving import ListName

router = APIRouter(tags=["live"])


@router.websocket("/ws/prices")
async def ws_prices(
    websocket: WebSocket,
    state: State,
    sku: Annotated[str | None, Query(description="Comma-separated skus; all when absent.")] = None,
) -> None:
    """Pushes every price change as the flows publish it: the product's ``PriceView`` JSON,
    exactly what ``GET /prices/{sku}`` answers at that moment (changes that come together are
    sent together, each product once, as it is after its latest change)."""
    try:
        skus = None if sku is None else frozenset(parse_skus(sku))
    except HTTPException as exc:
        await websocket.close(code=1008, reason=str(exc.detail)[:120])
        return
    async with slot(websocket, state) as granted:
        if not granted:
            return
        await websocket.accept()
        sub = state.hub.subscribe_prices(skus)  # its queue holds the views' texts
        try:
            await pump(websocket, state, sub)
        finally:
            state.hub.unsubscribe(sub)


@router.websocket("/ws/recommendations/{user_id:path}")
async def ws_recommendations(
    websocket: WebSocket,
    user_id: str,
    state: State,
    recommender: Recommender,
    list_name: Annotated[ListName, Query(alias="list", description=LIST_HELP)] = "mixed",
) -> None:
    """Sends the shopper's current list at once, then the new list each time the flows change it.

    Messages are ``Recommendations`` JSON, exactly what ``GET /recommendations/{user_id}``
    answers at that moment for the same ``list``. The same credentials are needed: the
    shopper's session (the storefront's cookie) or an admin token; the handshake is refused
    with 401 or 403.
    """
    if not valid_id(user_id):
        await websocket.close(code=1008, reason="malformed user id")
        return
    try:
        shopper_reader(websocket, user_id)
    except HTTPException as exc:
        await deny(websocket, exc.status_code, str(exc.detail))
        return
    async with slot(websocket, state) as granted:
        if granted:
            await _follow(websocket, state, recommender, user_id, list_name)


async def _follow(
    websocket: WebSocket,
    state: AppState,
    recommender: RecommendationService,
    user_id: str,
    list_name: ListName,
) -> None:
    await websocket.accept()
    sub = state.hub.subscribe_recommendations(user_id)
    k = state.settings.recommendations_k

    async def render(_: str) -> str | None:
        try:
            return (await recommender.for_shopper(user_id, k, list_name)).model_dump_json()
        except ServiceUnavailable:
            return None  # the next change after Redis is back brings the list

    sub.offer("initial")
    try:
        await pump(websocket, state, sub, render)
    finally:
        state.hub.unsubscribe(sub, user_id)
