"""JSON answers of the hot routes, written once and sent as bytes.

FastAPI validates a route's return value against its ``response_model`` and serialises it
again; for a value the route built from that very model, that is the same work twice per
request. The hot routes return :class:`JsonBytes` instead (FastAPI sends a ``Response`` as it
is) and keep ``response_model`` for the OpenAPI document only.

>>> from pydantic import BaseModel
>>> class Point(BaseModel):
...     x: int
>>> model_json(Point(x=1))
b'{"x":1}'
>>> json_object({"a": b'{"x":1}', "b": b"2"})
b'{"a":{"x":1},"b":2}'
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from pydantic import BaseModel
from starlette.responses import Response


class JsonBytes(Response):
    """A response whose body is already JSON."""

    media_type = "application/json"


def model_json(model: BaseModel) -> bytes:
    """``model`` as JSON, by its own compiled serializer (no validation pass)."""
    return model.__pydantic_serializer__.to_json(model)


def json_object(members: Mapping[str, bytes]) -> bytes:
    """A JSON object from already-encoded member values."""
    return b"{" + b",".join(orjson.dumps(k) + b":" + v for k, v in members.items()) + b"}"
