"""Signed bearer tokens (JWT, HS256) for the three kinds of caller.

- ``admin``: the operator, scopes ``admin:read`` / ``admin:write`` (password flow);
- ``producer``: a producer client, scopes ``events:write:<topic>`` (client-credentials flow);
- ``shopper``: a storefront session, bound to one ``user_id`` and ``session_id``.

A token of one kind is never accepted where another kind is asked for.

>>> import time
>>> from schemas.settings import Settings
>>> s = Settings()
>>> token, _ = issue_token(s, "producer", "c-1", ["events:write:orders"], now=time.time())
>>> claims = read_token(s, token)
>>> claims.kind, claims.subject, claims.scopes
('producer', 'c-1', ('events:write:orders',))
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal, cast, get_args

import jwt
from pydantic import BaseModel, Field

from schemas.settings import Settings

Kind = Literal["admin", "producer", "shopper"]
KINDS = get_args(Kind)
ALGORITHM = "HS256"
ISSUER = "tillflow"


class TokenError(ValueError):
    """The token is missing, forged, expired or not of a known kind."""


@dataclass(frozen=True)
class Claims:
    kind: Kind
    subject: str
    scopes: tuple[str, ...]
    issued_at: int
    expires_at: int
    session_id: str | None = None


def issue_token(
    settings: Settings,
    kind: Kind,
    subject: str,
    scopes: list[str],
    *,
    now: float,
    ttl_s: int | None = None,
    session_id: str | None = None,
) -> tuple[str, int]:
    """A signed token and its expiry (epoch seconds); ``ttl_s`` defaults to TILLFLOW_JWT_TTL_S."""
    issued = int(now)
    expires = issued + (settings.jwt_ttl_s if ttl_s is None else ttl_s)
    claims: dict[str, object] = {
        "sub": subject,
        "kind": kind,
        "scopes": scopes,
        "iat": issued,
        "exp": expires,
        "iss": ISSUER,
    }
    if session_id is not None:
        claims["sid"] = session_id
    key = settings.jwt_secret.get_secret_value()
    return jwt.encode(claims, key, algorithm=ALGORITHM), expires


def read_token(settings: Settings, token: str) -> Claims:
    """The token's claims, or :class:`TokenError` saying what is wrong with it."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("the token has expired; get a new one") from None
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    kind = claims.get("kind")
    scopes = claims.get("scopes", [])
    if kind not in KINDS or not isinstance(scopes, list):
        raise TokenError("invalid token: unknown kind or scopes")
    session = claims.get("sid")
    return Claims(
        kind=cast(Kind, kind),
        subject=str(claims["sub"]),
        scopes=tuple(str(s) for s in scopes),
        issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]),
        session_id=None if session is None else str(session),
    )


class Token(BaseModel):
    """An OAuth2 access token (RFC 6749 section 5.1)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    scopes: list[str]


class VerifiedTokens:
    """Tokens whose signature was already checked, with their claims (bounded, LRU).

    A client sends the same token with every request; verifying its signature and claims
    once is enough, as long as expiry is still checked at each use. Only valid tokens are
    kept, so a forged or malformed one is checked in full every time.

    >>> import time
    >>> s = Settings()
    >>> now = time.time()
    >>> token, _ = issue_token(s, "admin", "ops", ["admin:read"], now=now, ttl_s=60)
    >>> seen = VerifiedTokens(max_tokens=1)
    >>> seen.read(s, token, now=now).subject, len(seen)
    ('ops', 1)
    >>> seen.read(s, token, now=now + 60)
    Traceback (most recent call last):
    ...
    api.tokens.TokenError: the token has expired; get a new one
    """

    def __init__(self, max_tokens: int = 10_000) -> None:
        self.max_tokens = max_tokens
        self._claims: OrderedDict[str, Claims] = OrderedDict()

    def read(self, settings: Settings, token: str, now: float) -> Claims:
        """The token's claims, as :func:`read_token` gives them."""
        claims = self._claims.get(token)
        if claims is None:
            claims = read_token(settings, token)
            self._claims[token] = claims
            if len(self._claims) > self.max_tokens:
                self._claims.popitem(last=False)
        if claims.expires_at <= now:
            self._claims.pop(token, None)
            raise TokenError("the token has expired; get a new one")
        return claims

    def __len__(self) -> int:
        return len(self._claims)
