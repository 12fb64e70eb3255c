"""OpenSearch clients (one per process, built by the caller) and the product index's creation."""

from __future__ import annotations

from typing import Any

from opensearchpy import AsyncOpenSearch, OpenSearch
from opensearchpy.exceptions import RequestError

from schemas.settings import Settings
from search.documents import index_body


def _options(settings: Settings, timeout_s: float | None) -> dict[str, Any]:
    return {
        "hosts": [settings.opensearch_url],
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
    """Create the product index unless it exists; True when it was created."""
    if client.indices.exists(index=settings.search_index):
        return False
    try:
        client.indices.create(index=settings.search_index, body=index_body())
    except RequestError as exc:  # created by another process between the two calls
        if exc.error != "resource_already_exists_exception":
            raise
        return False
    return True
