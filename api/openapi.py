"""Answers the middleware gives, added to the OpenAPI document of the routes they guard.

The body cap answers 413 on any route with a body; the per-client rate limit answers 429 on the
public prefixes. Routes do not repeat these; this puts them where clients (and schema-driven
tests) look. A 422 is either FastAPI's list of validation errors or a route's own check of a
value (``{"detail": "..."}``), so both shapes are documented. And before any route runs, the
HTTP server itself answers ``400`` (plain text) to a request line or headers it cannot take
(malformed, or larger than its limits).

>>> doc = {"paths": {"/prices": {"get": {"responses": {"200": {}}}},
...                  "/admin/x": {"post": {"requestBody": {}, "responses": {"200": {}}}}}}
>>> paths = document_middleware(doc, ("/prices",))["paths"]
>>> sorted(paths["/prices"]["get"]["responses"]), sorted(paths["/admin/x"]["post"]["responses"])
(['200', '400', '429'], ['200', '400', '413'])
"""

from __future__ import annotations

from typing import Any

from api.problems import DESCRIPTIONS

_PROBLEM = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}


_TEXT = {"type": "string"}
_SERVER_400 = "The HTTP server refused a malformed or oversized request line or headers."


def _answer(code: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS[code],
        "content": {"application/json": {"schema": _PROBLEM}},
    }


def document_middleware(schema: dict[str, Any], public: tuple[str, ...]) -> dict[str, Any]:
    """``schema`` with 413 on every operation that takes a body and 429 under ``public``."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            refused = answers.setdefault("400", {"description": _SERVER_400, "content": {}})
            refused.setdefault("content", {}).setdefault("text/plain", {"schema": _TEXT})
            if "requestBody" in operation:
                answers.setdefault("413", _answer(413))
            if path.startswith(public):
                answers.setdefault("429", _answer(429))
            invalid = answers.get("422", {}).get("content", {}).get("application/json", {})
            if invalid.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                invalid["schema"] = {"anyOf": [invalid["schema"], _PROBLEM]}
    return schema
