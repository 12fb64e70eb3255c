"""The product catalogue: its durable file and its copy in Redis (``RedisKeys.catalogue``).

The file (``TILLFLOW_CATALOGUE_FILE``, JSON lines, one ``CatalogueItem`` a line) is the
catalogue's record; Redis holds the copy the flows and the API read. ``store_catalogue``
writes both (file first, replaced atomically); ``load_catalogue`` reads Redis and, when Redis
has lost it, the file, which it copies back. Every write to the copy goes through
:func:`copy_to_redis`, which announces it on ``RedisKeys.catalogue_channel``: the API keeps
the catalogue in memory until then.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import structlog

from infra.clients import SyncRedis, queue_publish, redis_client
from schemas.catalogue import CatalogueItem
from schemas.settings import Settings

log = structlog.get_logger(__name__)


def read_catalogue_file(path: Path) -> dict[str, CatalogueItem]:
    """The products in the durable file (none if it does not exist)."""
    if not path.exists():
        return {}
    items = (
        CatalogueItem.model_validate_json(line)
        for line in path.read_text().splitlines()
        if line.strip()
    )
    return {item.sku: item for item in items}


def write_catalogue_file(path: Path, items: Iterable[CatalogueItem]) -> int:
    """Add or replace ``items`` in the durable file; return how many products it holds."""
    merged = read_catalogue_file(path)
    merged.update((item.sku, item) for item in items)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text("".join(f"{item.model_dump_json()}\n" for item in merged.values()))
    os.replace(partial, path)  # readers see the old file or the new one, never half of one
    return len(merged)


def copy_to_redis(client: SyncRedis, settings: Settings, items: Iterable[CatalogueItem]) -> int:
    """Add or replace ``items`` in Redis's copy and announce the change; return how many."""
    mapping = {item.sku: item.model_dump_json() for item in items}
    if mapping:
        pipe = client.pipeline(transaction=False)
        pipe.hset(settings.keys.catalogue, mapping=mapping)
        queue_publish(pipe, settings.keys.catalogue_channel, str(len(mapping)))
        pipe.execute()
    return len(mapping)


def load_catalogue(settings: Settings) -> dict[str, CatalogueItem]:
    client = redis_client(settings)
    try:
        raw = client.hgetall(settings.keys.catalogue)
        if not raw:  # Redis lost it (or never had it): the durable file, copied back
            items = read_catalogue_file(settings.catalogue_file)
            if copy_to_redis(client, settings, items.values()):
                log.warning(
                    "catalogue restored to Redis from its file",
                    file=str(settings.catalogue_file),
                    products=len(items),
                )
            return items
    finally:
        client.close()
    items_ = (CatalogueItem.model_validate_json(v) for v in raw.values())  # type: ignore[union-attr]
    return {item.sku: item for item in items_}


def store_catalogue(settings: Settings, items: Iterable[CatalogueItem]) -> int:
    """Write ``items`` to the durable file, then to Redis; return how many were given."""
    given = list(items)
    if not given:
        return 0
    write_catalogue_file(settings.catalogue_file, given)
    client = redis_client(settings)
    try:
        return copy_to_redis(client, settings, given)
    finally:
        client.close()
