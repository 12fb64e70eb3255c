"""Dependencies shared by the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from api.state import AppState


async def get_state(request: Request) -> AppState:
    return cast(AppState, request.app.state.tillflow)


State = Annotated[AppState, Depends(get_state)]
