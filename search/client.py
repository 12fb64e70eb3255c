"""OpenSearch clients (one per process, built by the caller) and the product index's creation."""

from __future__ import annotations

from typing import Any

import orjson
from opensearchpy import AsyncOpenSearch, JSONSerializer, OpenSearch
from opensearchpy.exceptions import RequestError, SerializationError

from schemas.settings import Settings
from search.documents import index_body


class OrjsonSerializer(JSONSerializer):
    """Request and response bodies through orjson (the client's default is the stdlib's json);
    values orjson does not know (``Decimal``, numpy) go through the client's own ``default``.

    >>> s = OrjsonSerializer()
    >>> s.dumps({"a": [1, 2.5]}), s.loads('{"a": 1}'), s.dumps("as is")
    ('{"a":[1,2.5]}', {'a': 1}, 'as is')
    """

    def dumps(self, data: Any) -> Any:
        if isinstance(data, str | bytes):  # already serialised
            return data
        try:
            return orjson.dumps(data, default=self.default).decode()
        except TypeError as exc:
            raise SerializationError(data, exc) from exc

    def loads(self, s: str) -> Any:
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(s, exc) from exc


def _options(settings: Settings, timeout_s: float | None) -> dict[str, Any]:
    return {
        "hosts": [settings.opensearch_url],
        "serializer": OrjsonSerializer(),
        "timeout": settings.opensearch_timeout_s if timeout_s is None else timeout_s,
        "max_retries": 0,  # callers decide: the API answers 503, the indexer retries its batch
        "retry_on_timeout": False,
    }


def opensearch_client(settings: Settings, timeout_s: float | None = None) -> OpenSearch:
    """A blocking client (indexer, CLI, tests)."""
    return OpenSearch(**_options(settings, timeout_s))


def async_opensearch_client(settings: Settings, timeout_s: float | None = None) -> AsyncOpenSearch:
    """An asyncio client (the API), over one aiohttp connection pool."""
    return AsyncOpenSearch(**_options(settings, timeout_s), pool_maxsize=32)


def ensure_product_index(client: OpenSearch, settings: Settings) -> bool:
    """Create the product index unless it exists; True when it was created.

    An existing index is given the current mapping (new fields are added; existing documents
    fill them when the indexer rewrites the catalogue, as it does when it starts).
    """
    body = index_body()
    if client.indices.exists(index=settings.search_index):
        client.indices.put_mapping(index=settings.search_index, body=body["mappings"])
        return False
    try:
        client.indices.create(index=settings.search_index, body=body)
    except RequestError as exc:  # created by another process between the two calls
        if exc.error != "resource_already_exists_exception":
            raise
        return False
    return True
