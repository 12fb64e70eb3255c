"""``POST /session``: the storefront's shopper session.

A browser without a session gets a new shopper (a random ``user_id``) and ``session_id``;
one with a valid session keeps its shopper and gets the session renewed. The session is a
signed token in an HttpOnly, SameSite=Strict cookie (and in the answer, for API clients): it
lets that shopper post their own ``user-activity`` and read their own recommendations.
"""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from api.auth import SESSION_COOKIE, claims_of
from api.deps import State
from api.problems import responses
from api.tokens import issue_token

router = APIRouter(tags=["auth"])


class Session(BaseModel):
    user_id: str = Field(description="The shopper this session speaks for.")
    session_id: str
    access_token: str = Field(description="The same session as a bearer token.")
    expires_in: int


@router.post(
    "/session",
    response_model=Session,
    summary="Start or renew the storefront's shopper session",
    responses=responses(429),
)
async def start_session(request: Request, response: Response, state: State) -> Session:
    try:
        current = claims_of(request, required="a shopper session")
    except HTTPException:
        current = None  # an expired or foreign session: start a new one
    if current is not None and current.kind == "shopper" and current.session_id:
        user_id, session_id = current.subject, current.session_id
    else:
        user_id, session_id = f"u-{secrets.token_hex(8)}", f"s-{secrets.token_hex(8)}"
    ttl = state.settings.session_ttl_s
    token, _ = issue_token(
        state.settings,
        "shopper",
        user_id,
        ["events:write:user-activity"],
        now=time.time(),
        ttl_s=ttl,
        session_id=session_id,
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return Session(user_id=user_id, session_id=session_id, access_token=token, expires_in=ttl)
