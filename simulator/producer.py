"""Run the shop against the real stack: produce its events to Kafka with aiokafka and read
the prices tillflow publishes back from Redis, closing the loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import redis.asyncio as aioredis
import structlog

from flows.catalogue import store_catalogue
from infra.readiness import require_redis, require_topics
from ingest.producer import aiokafka_producer
from schemas.settings import Settings
from schemas.topics import INPUT_TOPICS
from simulator.config import ShopConfig
from simulator.ground_truth import write_ground_truth
from simulator.shop import DAY, Emitted, Shop

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to drive the shop: how fast, on which clock, for how long."""

    rate: float = 0.0  # events per wall-clock second; 0 = as fast as possible
    clock: str = "sim"  # "sim": event_time from the simulated clock; "wall": time of sending
    days: float = 28.0  # simulated days to run
    max_events: int | None = None
    price_refresh_s: float = 0.5  # how often published prices are re-read from Redis
    batch: int = 500  # events handed to the producer between pacing checks
    ground_truth: Path | None = None


@dataclass(frozen=True, slots=True)
class RunReport:
    events: int
    seconds: float
    events_per_s: float
    per_topic: dict[str, int]
    price_refreshes: int
    published_prices: int
    last_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    """The highest offset Kafka acknowledged per (broker-side topic, partition)."""


async def refresh_prices(shop: Shop, client: aioredis.Redis, settings: Settings) -> int:
    """Load every published price into the shop's price book; return how many there are."""
    published: dict[bytes, bytes] = await client.hgetall(settings.keys.current_prices)  # type: ignore[misc]
    return shop.prices.update(published)


async def run_shop(
    settings: Settings,
    config: ShopConfig,
    options: RunOptions,
    on_progress: Callable[[int], Awaitable[None] | None] | None = None,
    *,
    shop: Shop | None = None,
    events: Iterable[Emitted] | None = None,
) -> RunReport:
    """Produce the shop's events to the input topics until ``days`` or ``max_events``.

    ``shop`` and ``events`` (default: a new shop of ``config`` and its events for ``days``)
    let one shop run in phases, e.g. a backfill of its history and then its live traffic.
    """
    names = {t.name: settings.topic(t) for t in INPUT_TOPICS}
    require_topics(settings, list(names.values()))
    require_redis(settings)
    shop = shop or Shop(config)
    store_catalogue(settings, shop.catalogue())
    if options.clock == "wall":
        shop.stamp_with(lambda _t: time.time())
    if events is None:
        events = shop.events(until=shop.start + options.days * DAY)
    client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=settings.redis_timeout_s)
    producer = aiokafka_producer(settings, linger_ms=5)
    await producer.start()
    sent = 0
    refreshes = 0
    published = await refresh_prices(shop, client, settings)
    started = time.perf_counter()
    last_refresh = started
    pending: list[asyncio.Future[object]] = []
    offsets: dict[tuple[str, int], int] = {}
    try:
        for event in events:
            value = orjson.dumps(event.payload)
            pending.append(
                await producer.send(names[event.topic.name], value=value, key=event.key.encode())
            )
            sent += 1
            if options.max_events is not None and sent >= options.max_events:
                break
            if sent % options.batch:
                continue
            await _settle(pending, offsets)
            now = time.perf_counter()
            if now - last_refresh >= options.price_refresh_s:
                published = await refresh_prices(shop, client, settings)
                refreshes += 1
                last_refresh = now
            if options.rate > 0:
                ahead = sent / options.rate - (now - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if on_progress is not None:
                result = on_progress(sent)
                if result is not None:
                    await result
        await producer.flush()
        await _settle(pending, offsets)
    finally:
        await producer.stop()
        await client.aclose()
    seconds = time.perf_counter() - started
    if options.ground_truth is not None:
        write_ground_truth(shop, options.ground_truth)
    report = RunReport(
        events=sent,
        seconds=seconds,
        events_per_s=sent / seconds if seconds > 0 else 0.0,
        per_topic=dict(shop.stats.events),
        price_refreshes=refreshes,
        published_prices=published,
        last_offsets=offsets,
    )
    log.info(
        "simulation finished", **{k: v for k, v in asdict(report).items() if k != "last_offsets"}
    )
    return report


async def _settle(
    pending: list[asyncio.Future[object]], offsets: dict[tuple[str, int], int]
) -> None:
    """Wait for the acknowledgements of everything sent so far (raise the first failure);
    keep the highest acknowledged offset per partition."""
    if pending:
        for meta in await asyncio.gather(*pending):
            where = (meta.topic, meta.partition)  # type: ignore[attr-defined]
            offsets[where] = max(offsets.get(where, -1), meta.offset)  # type: ignore[attr-defined]
        pending.clear()
