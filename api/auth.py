"""Who may call what: admin tokens, producer tokens and shopper sessions, as dependencies.

- ``/admin/*`` needs an admin token holding the route's scopes (OAuth2 password flow).
- ``POST /events/{topic}`` needs a producer token with ``events:write:<topic>`` (OAuth2 client
  credentials, ``POST /oauth/token``), or a shopper session for ``user-activity`` only.
- A shopper's recommendations need that shopper's session, or an admin token with
  ``admin:read``.

Tokens come as ``Authorization: Bearer …``; the storefront's session also as the HttpOnly
``tillflow_session`` cookie, which carries nothing but shopper sessions.
"""

from __future__ import annotations

import time
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyCookie, HTTPBearer, OAuth2PasswordBearer, SecurityScopes
from starlette.requests import HTTPConnection

from api.producers import find_client
from api.ratelimit import client_address
from api.state import AppState
from api.tokens import Claims, Kind, TokenError
from schemas.producers import write_scope
from schemas.topics import USER_ACTIVITY, Topic

READ = "admin:read"
WRITE = "admin:write"
SCOPES = {READ: "See models, jobs and drift.", WRITE: "Promote, roll back, trigger jobs."}
SESSION_COOKIE = "tillflow_session"
WRITER = "a producer token (POST /oauth/token) or a shopper session (POST /session)"

oauth2 = OAuth2PasswordBearer(tokenUrl="/admin/token", scopes=SCOPES, auto_error=False)
bearer = HTTPBearer(
    auto_error=False,
    description="A producer token (`POST /oauth/token`), a shopper session token "
    "(`POST /session`) or an admin token (`POST /admin/token`).",
)
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="The storefront's shopper session."
)


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def forbidden(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail)


def _state(connection: HTTPConnection) -> AppState:
    return cast(AppState, connection.app.state.tillflow)


def presented(connection: HTTPConnection) -> tuple[str, bool] | None:
    """The token the caller presented, and whether it came from the session cookie."""
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = connection.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else None


def claims_of(connection: HTTPConnection, *, required: str) -> Claims | None:
    """The caller's claims; None when no token was presented; 401 for a bad token."""
    found = presented(connection)
    if found is None:
        return None
    token, from_cookie = found
    try:
        state = _state(connection)
        claims = state.tokens.read(state.settings, token, time.time())
    except TokenError as exc:
        raise unauthorized(f"{exc} ({required})") from None
    if from_cookie and claims.kind != "shopper":
        raise unauthorized("the session cookie holds no shopper session")
    return claims


def _of_kind(claims: Claims | None, kind: Kind, required: str) -> Claims:
    if claims is None:
        raise unauthorized(f"login required: {required}")
    if claims.kind != kind:
        raise forbidden(f"a {claims.kind} token cannot be used here: {required}")
    return claims


def current_admin(
    scopes: SecurityScopes, request: Request, _token: Annotated[str | None, Depends(oauth2)]
) -> Claims:
    """The authenticated admin, holding every scope the route asks for (403 otherwise)."""
    required = "POST /admin/token for a bearer token"
    claims = _of_kind(claims_of(request, required=required), "admin", required)
    missing = [s for s in scopes.scopes if s not in claims.scopes]
    if missing:
        raise forbidden(f"missing scope: {', '.join(missing)}")
    return claims


async def event_writer(connection: HTTPConnection, topic: Topic) -> Claims:
    """A producer allowed to write ``topic``, or a shopper session writing ``user-activity``.

    401 without a valid credential (or for a revoked client), 403 without the topic's scope."""
    required = WRITER
    claims = claims_of(connection, required=required)
    if claims is None:
        raise unauthorized(f"login required: {required}")
    if claims.kind == "shopper":
        if topic is not USER_ACTIVITY:
            raise forbidden(f"a shopper session writes {USER_ACTIVITY.name} only")
        return claims
    if claims.kind != "producer":
        raise forbidden(f"a {claims.kind} token cannot write events: {required}")
    state = _state(connection)
    client = await find_client(
        state.redis, state.settings.keys, state.producer_clients, claims.subject
    )
    if client is None or not client.active:
        raise unauthorized(f"producer client {claims.subject} is unknown or revoked")
    scope = write_scope(topic.name)
    if scope not in claims.scopes or topic.name not in client.topics:
        raise forbidden(f"missing scope: {scope}")
    return claims


def shopper_reader(connection: HTTPConnection, user_id: str) -> Claims:
    """That shopper's own session, or an admin token with ``admin:read``; 401 or 403."""
    required = "the shopper's session (POST /session) or an admin token"
    claims = claims_of(connection, required=required)
    if claims is None:
        raise unauthorized(f"login required: {required}")
    if claims.kind == "admin" and READ in claims.scopes:
        return claims
    if claims.kind == "shopper" and claims.subject == user_id:
        return claims
    raise forbidden("this is another shopper's data")


def throttle_login(request: Request, user: str) -> None:
    """429 with ``Retry-After`` while this client address or this user has failed too often."""
    wait = _state(request).logins.retry_after_s(
        client_address(request.scope), user, time.monotonic()
    )
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed logins; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def login_failed(request: Request, user: str, detail: str) -> HTTPException:
    """Count a failed login for the client address and the user; the 401 to raise."""
    _state(request).logins.failed(client_address(request.scope), user, time.monotonic())
    return unauthorized(detail)


AdminReader = Annotated[Claims, Security(current_admin, scopes=[READ])]
"""An admin token with ``admin:read``."""
AdminWriter = Annotated[Claims, Security(current_admin, scopes=[WRITE])]
"""An admin token with ``admin:write``."""
ADMIN_ERRORS = (401, 403, 429)
"""What an admin route answers to a caller without the right token (or too many tries)."""
