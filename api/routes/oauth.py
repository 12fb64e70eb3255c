"""``POST /oauth/token``: OAuth2 client credentials for producer clients.

A producer client (``tillflow producers create``) trades its id and secret for a short-lived
JWT whose scopes name the topics it may write (``events:write:<topic>``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Form, HTTPException, Request, status

from api.auth import login_failed, throttle_login
from api.deps import State
from api.passwords import verify_secret
from api.problems import responses
from api.producers import find_client
from api.tokens import Token, issue_token

router = APIRouter(tags=["auth"])
audit = structlog.get_logger("tillflow.api.audit")

# A real hash to verify against for unknown client ids, so they cost as much as known ones.
_DECOY = (
    "$argon2id$v=19$m=19456,t=2,p=1$LidNA3Z98V07E/3q5SZU8g$"
    "gVlzvvCkMKYmmBHTApk7n6KpG5oHl825qtaoB5GzgB4"
)


@router.post(
    "/oauth/token",
    response_model=Token,
    summary="Get a producer token (OAuth2 client credentials)",
    description="Form fields as in RFC 6749 section 4.4: `grant_type=client_credentials`, "
    "`client_id`, `client_secret` and optionally `scope` (space-separated "
    "`events:write:<topic>`; all the client's topics when empty).",
    responses=responses(400, 401, 413, 429, 503),
)
async def client_credentials(
    state: State,
    request: Request,
    grant_type: Annotated[Literal["client_credentials"], Form()],
    client_id: Annotated[str, Form(max_length=64)],
    client_secret: Annotated[str, Form(max_length=256)],
    scope: Annotated[str, Form(max_length=2048)] = "",
) -> Token:
    throttle_login(request, client_id)
    keys = state.settings.keys
    client = await find_client(state.redis, keys, state.producer_clients, client_id)
    stored = client.secret_hash if client is not None else _DECOY
    secret_ok = await asyncio.to_thread(verify_secret, client_secret, stored)
    if client is None or not client.active or not secret_ok:
        audit.warning("producer token refused", client_id=client_id)
        raise login_failed(request, client_id, "unknown client, revoked client or wrong secret")
    wanted = scope.split() or client.scopes
    unknown = [s for s in wanted if s not in client.scopes]
    if unknown:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"scope not granted to this client: {', '.join(unknown)}"
        )
    token, _ = issue_token(state.settings, "producer", client.client_id, wanted, now=time.time())
    audit.info("producer token", client_id=client.client_id, scopes=wanted)
    return Token(access_token=token, expires_in=state.settings.jwt_ttl_s, scopes=wanted)
