"""Admin authentication: OAuth2 password flow issuing JWTs with an expiry and scopes.

>>> from schemas.settings import Settings
>>> s = Settings()
>>> token, _ = issue_token(s, "admin", ["admin:read"])
>>> claims = read_token(s, token)
>>> claims.subject, claims.scopes
('admin', ['admin:read'])
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Annotated, cast

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer, SecurityScopes

from schemas.settings import Settings

READ = "admin:read"
WRITE = "admin:write"
SCOPES = {READ: "See models, jobs and drift.", WRITE: "Promote, roll back, trigger jobs."}
ALGORITHM = "HS256"

oauth2 = OAuth2PasswordBearer(tokenUrl="/admin/token", scopes=SCOPES, auto_error=False)


@dataclass(frozen=True)
class Claims:
    subject: str
    scopes: list[str]
    expires_at: int


def password_ok(settings: Settings, username: str, password: str) -> bool:
    """Constant-time check of the configured admin's credentials."""
    user_ok = hmac.compare_digest(username.encode(), settings.admin_username.encode())
    secret = settings.admin_password.get_secret_value().encode()
    return hmac.compare_digest(password.encode(), secret) and user_ok


def issue_token(settings: Settings, subject: str, scopes: list[str]) -> tuple[str, int]:
    """A signed token for ``subject`` with ``scopes``, valid ``TILLFLOW_JWT_TTL_S`` seconds."""
    now = int(time.time())
    expires = now + settings.jwt_ttl_s
    claims = {"sub": subject, "scopes": scopes, "iat": now, "exp": expires, "iss": "tillflow"}
    key = settings.jwt_secret.get_secret_value()
    return jwt.encode(claims, key, algorithm=ALGORITHM), expires


def read_token(settings: Settings, token: str) -> Claims:
    """The token's claims; 401 when it is missing, forged or expired."""
    try:
        claims = jwt.decode(
            token, settings.jwt_secret.get_secret_value(), algorithms=[ALGORITHM],
            issuer="tillflow", options={"require": ["exp", "sub"]},
        )  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise _unauthorized("the token has expired; log in again") from None
    except jwt.PyJWTError as exc:
        raise _unauthorized(f"invalid token: {exc}") from None
    return Claims(str(claims["sub"]), list(claims.get("scopes", [])), int(claims["exp"]))


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def current_admin(
    scopes: SecurityScopes, request: Request, token: Annotated[str | None, Depends(oauth2)]
) -> Claims:
    """The authenticated admin, holding every scope the route asks for (403 otherwise)."""
    if token is None:
        raise _unauthorized("login required: POST /admin/token for a bearer token")
    settings = cast(Settings, request.app.state.tillflow.settings)
    claims = read_token(settings, token)
    missing = [s for s in scopes.scopes if s not in claims.scopes]
    if missing:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"missing scope: {', '.join(missing)}")
    return claims
