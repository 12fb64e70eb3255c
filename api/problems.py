"""Error answers and their OpenAPI documentation, shared by the routes.

Every error is JSON with a ``detail``; a 503 also names the ``service`` that is away.

>>> sorted(responses(401, 429))
[401, 429]
>>> responses(503)[503]["model"].__name__
'Unavailable'
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Problem(BaseModel):
    """What went wrong, in words."""

    detail: str


class Unavailable(BaseModel):
    """A service the API needs does not answer."""

    detail: str
    service: str


DESCRIPTIONS = {
    400: "The request asks for something that does not exist (e.g. an unknown scope).",
    401: "No credential, or one that is invalid, expired or revoked.",
    403: "The credential does not allow this (another shopper, a missing scope or topic).",
    404: "Not found.",
    409: "The request conflicts with the current state.",
    413: "The body is larger than TILLFLOW_MAX_BODY_BYTES, or carries too many events.",
    415: "The body is not sent as application/json.",
    429: "Rate limit or login throttle reached; `Retry-After` says when to try again.",
    503: "A service the API needs (named in `service`) is unavailable.",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for ``codes``, each with its model and description."""
    return {
        code: {"model": Unavailable if code == 503 else Problem, "description": DESCRIPTIONS[code]}
        for code in codes
    }
