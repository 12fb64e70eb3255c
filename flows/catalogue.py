"""Read and write the product catalogue in Redis (``schemas.keys.RedisKeys.catalogue``)."""

from __future__ import annotations

from collections.abc import Iterable

from infra.clients import redis_client
from schemas.catalogue import CatalogueItem
from schemas.settings import Settings


def load_catalogue(settings: Settings) -> dict[str, CatalogueItem]:
    client = redis_client(settings)
    try:
        raw = client.hgetall(settings.keys.catalogue)
    finally:
        client.close()
    items = (CatalogueItem.model_validate_json(v) for v in raw.values())  # type: ignore[union-attr]
    return {item.sku: item for item in items}


def store_catalogue(settings: Settings, items: Iterable[CatalogueItem]) -> int:
    mapping = {item.sku: item.model_dump_json() for item in items}
    if not mapping:
        return 0
    client = redis_client(settings)
    try:
        client.hset(settings.keys.catalogue, mapping=mapping)
    finally:
        client.close()
    return len(mapping)
