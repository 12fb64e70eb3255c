"""Refresh-ahead of requested prices (``api/prices.py`` ``PriceService.keep_fresh``), on the
real Redis the flows' sinks write."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from functools import partial
from socket import create_server

import pytest

from api.cache import LastKnown
from api.prices import Priced
from api.redis_gate import RedisGate
from api.state import AppState
from flows.catalogue import store_catalogue
from flows.sinks.prices import PriceWriter
from infra.stack.topics import delete_topics, ensure_topics
from online_models.pricer import PriceChange
from schemas.catalogue import CatalogueItem
from schemas.serving import PriceView
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS
from tests.flow_processes import isolated_settings

pytestmark = pytest.mark.integration

SKUS = [f"SKU-R{i:02d}" for i in range(30)]
TTL_S = 1.0


@pytest.fixture(scope="module")
def shop(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("refresh")
    settings = isolated_settings(
        stack, "refresh", root, catalogue_file=root / "catalogue.jsonl", api_cache_ttl_s=TTL_S
    )
    ensure_topics(settings)  # the price writer's price-updates topic
    store_catalogue(
        settings,
        [CatalogueItem(sku=s, category="tea", list_price=10.0, unit_cost=4.0) for s in SKUS],
    )
    try:
        yield settings
    finally:
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])


@pytest.fixture
async def state(shop: Settings) -> AsyncIterator[AppState]:
    state = AppState.create(shop)
    yield state
    await state.redis.close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with create_server(("127.0.0.1", 0)) as server:
        port: int = server.getsockname()[1]
    return port


def publish(settings: Settings, sku: str, price: float, seq: int) -> None:
    writer = PriceWriter(settings)
    writer.write_batch(
        [
            PriceChange(
                sku=sku,
                price=price,
                previous_price=10.0,
                reason="test",
                model_version="pricer:test",
                t=time.time(),
                sequence=seq,
            )
        ]
    )
    writer.close()


def _restored(cache: LastKnown[Priced], sku: str, stored: float | None) -> bool:
    return cache.stored_at(sku) != stored


def _price(body: bytes) -> float:
    return PriceView.model_validate_json(body).price


async def _until(condition: object, what: str, timeout_s: float = 10 * TTL_S) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not seen within {timeout_s} s: {what}"
        await asyncio.sleep(0.01)


async def test_a_requested_price_is_refreshed_before_it_expires_and_a_cold_one_is_not(
    shop: Settings, state: AppState
) -> None:
    """Read after each refresh, a product's price is a hit on every read, and a change
    written to Redis is served by the first refresh read after it; a product cached but not
    requested since is not read again."""
    prices, cache = state.price_service, state.prices
    hot, cold = SKUS[0], SKUS[1]
    assert await prices.answer(hot) is not None  # a miss: read, cached, noted as requested
    await prices.answers([cold])  # cached as the websocket push caches it: not requested
    cold_stored = cache.stored_at(cold)
    task = asyncio.create_task(prices.keep_fresh(limit=100))
    try:
        for _ in range(3):  # refreshed again and again while it is requested
            stored = cache.stored_at(hot)
            await _until(partial(_restored, cache, hot, stored), "a refresh of the hot price")
            body = prices.fresh(hot)  # the server's hit path: requested again
            assert body is not None, "a read missed the cache"
            assert _price(body) == 10.0
        # written as the flows write it, from elsewhere: the refreshes go on meanwhile
        await asyncio.to_thread(publish, shop, hot, 12.5, 1)
        written = time.monotonic()
        await _until(lambda: (cache.stored_at(hot) or written) > written, "a refresh read after it")
        body = prices.fresh(hot)
        assert body is not None, "a read missed the cache"
        assert _price(body) == 12.5
    finally:
        task.cancel()
    assert cache.stored_at(cold) == cold_stored  # never read again
    assert cache.fresh(cold, time.monotonic()) is None


async def test_a_tick_reads_at_most_its_bound_the_most_recently_requested_first(
    state: AppState,
) -> None:
    prices, cache = state.price_service, state.prices
    assert len(await prices.answers(SKUS)) == len(SKUS)
    for sku in SKUS:  # requested in this order: the last ones are the most recent
        assert prices.fresh(sku) is not None
    stored = {sku: cache.stored_at(sku) for sku in SKUS}
    assert await prices.refresh(within_s=TTL_S, limit=10) == 10
    refreshed = [sku for sku in SKUS if cache.stored_at(sku) != stored[sku]]
    assert refreshed == SKUS[-10:]
    metrics = state.metrics.render().decode()
    assert 'tillflow_serving_refreshed_total{kind="price"} 10.0' in metrics


async def test_a_failing_tick_does_not_end_the_refreshes(
    shop: Settings, state: AppState, closed_port: int
) -> None:
    """With Redis unreachable every tick fails; the task goes on, and refreshes again once
    it can read."""
    prices, cache = state.price_service, state.prices
    sku = SKUS[2]
    assert await prices.answer(sku) is not None
    reachable = prices.redis
    gone = RedisGate(shop.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed_port}/0"}))
    prices.redis = gone
    task = asyncio.create_task(prices.keep_fresh(limit=100))
    try:
        await _until(lambda: gone.down, "a tick that failed")
        # every tick fails until the price expires (nothing could refresh it)
        await _until(lambda: cache.fresh(sku, time.monotonic()) is None, "the price expired")
        prices.redis = reachable  # Redis is back
        assert await prices.answer(sku) is not None  # a miss, read and requested again
        stored = cache.stored_at(sku)
        await _until(lambda: cache.stored_at(sku) != stored, "a refresh after the outage")
        assert not task.done()
    finally:
        task.cancel()
        await gone.close()
