"""The catalogue with the prices published now (``GET /products``).

The catalogue changes rarely (``tillflow catalogue load``, a rebuild) and every write to it
is announced on ``RedisKeys.catalogue_channel`` (``flows/catalogue.py``), so the API keeps it
in memory and reads it again only after such an announcement (``api/hub.py``), or at the
latest after :data:`CATALOGUE_TTL_S` in case one went unheard. The published prices change all
the time: each request reads them. The recommendation ranker reads each candidate's category
from the same copy (:meth:`CatalogueService.categories`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel

from api.redis_gate import RedisGate
from infra.clients import AsyncRedis
from schemas.catalogue import CatalogueItem
from schemas.keys import RedisKeys
from schemas.serving import CurrentPrices

CATALOGUE_TTL_S = 60.0


class Product(BaseModel):
    sku: str
    name: str | None = None
    category: str
    list_price: float
    price: float


async def read_categories(client: AsyncRedis, keys: RedisKeys) -> dict[str, str]:
    """Each catalogued product's category, by sku, read now (one ``HGETALL``; ``client``
    decoding or not): for a reader that keeps no :class:`CatalogueService`."""
    raw = await client.hgetall(keys.catalogue)  # type: ignore[misc]
    return {_text(s): CatalogueItem.model_validate_json(item).category for s, item in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class CatalogueService:
    """The catalogue for the product routes (one per API process)."""

    def __init__(
        self,
        redis: RedisGate,
        keys: RedisKeys,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self._items: tuple[CatalogueItem, ...] | None = None  # by sku; None: to be read
        self._categories: dict[str, str] = {}  # of ``_items``, by sku
        self._read_at = 0.0
        self._changes = 0  # announcements heard, so a read that one overtook is not kept
        self.reads = 0  # how many times the catalogue was read from Redis

    def invalidate(self) -> None:
        """Read the catalogue again at the next request (it changed)."""
        self._items = None
        self._changes += 1

    async def products(self, category: str | None, limit: int, offset: int) -> list[Product]:
        """The catalogue's products (of ``category``, when given) by sku, a page of them,
        each with its published price (the list price until a change)."""
        items = await self._catalogue()
        if category is not None:
            items = tuple(i for i in items if i.category == category)
        page = items[offset : offset + limit]
        current = await self._prices()
        return [
            Product(
                sku=i.sku,
                name=i.name,
                category=i.category,
                list_price=i.list_price,
                price=current.get(i.sku, i.list_price),
            )
            for i in page
        ]

    async def categories(self) -> dict[str, str]:
        """Each catalogued product's category, by sku (read as :meth:`products` reads the
        catalogue: from memory while no change was announced)."""
        items = await self._catalogue()
        if self._items is not items:  # a read an announcement overtook: not kept
            return {i.sku: i.category for i in items}
        return self._categories

    async def _catalogue(self) -> tuple[CatalogueItem, ...]:
        now = self.clock()
        if self._items is not None and now - self._read_at < CATALOGUE_TTL_S:
            return self._items
        changes, key = self._changes, self.keys.catalogue

        async def read(client: AsyncRedis) -> dict[str, str]:
            return await client.hgetall(key)  # type: ignore[no-any-return,misc]

        raw = await self.redis.run(read)
        items = tuple(CatalogueItem.model_validate_json(raw[sku]) for sku in sorted(raw))
        self.reads += 1
        if changes == self._changes:  # no change announced while reading
            self._items, self._read_at = items, now
            self._categories = {i.sku: i.category for i in items}
        return items

    async def _prices(self) -> dict[str, float]:
        key = self.keys.current_prices

        async def read(client: AsyncRedis) -> dict[str, str]:
            return await client.hgetall(key)  # type: ignore[no-any-return,misc]

        return CurrentPrices.from_hash(await self.redis.run(read)).root
