"""Run the shop against the real stack: produce its events to Kafka with aiokafka and read
the prices tillflow publishes back from Redis, closing the loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from flows.catalogue import store_catalogue
from infra.clients import AsyncRedis, async_redis_client
from infra.readiness import require_redis, require_topics
from schemas.serving import CurrentPrices
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


async def refresh_prices(shop: Shop, client: AsyncRedis, settings: Settings) -> int:
    """Load every published price into the shop's price book; return how many there are."""
    published: dict[bytes, bytes] = await client.hgetall(settings.keys.current_prices)  # type: ignore[misc]
    return shop.prices.update(CurrentPrices.from_hash(published).root)


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
    client = async_redis_client(settings)
    producer = Acknowledged(settings)
    sent = 0
    refreshes = 0
    published = await refresh_prices(shop, client, settings)
    started = time.perf_counter()
    last_refresh = started
    try:
        for event in events:
            producer.produce(names[event.topic.name], orjson.dumps(event.payload), event.key)
            sent += 1
            if options.max_events is not None and sent >= options.max_events:
                break
            if sent % options.batch:
                continue
            producer.check()
            now = time.perf_counter()
            if now - last_refresh >= options.price_refresh_s:
                published = await refresh_prices(shop, client, settings)
                refreshes += 1
                last_refresh = now
            if options.rate > 0:
                ahead = sent / options.rate - (now - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await _report(on_progress, sent)
        await asyncio.to_thread(producer.finish, settings.kafka_timeout_s * 3)
        await _report(on_progress, sent)
    finally:
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
        last_offsets=producer.offsets,
    )
    log.info(
        "simulation finished", **{k: v for k, v in asdict(report).items() if k != "last_offsets"}
    )
    return report


async def _report(on_progress: Callable[[int], Awaitable[None] | None] | None, sent: int) -> None:
    if on_progress is not None:
        result = on_progress(sent)
        if result is not None:
            await result


class Acknowledged:
    """confluent-kafka's producer (acks=all, idempotent) that keeps, per partition, the highest
    offset Kafka acknowledged, and raises the first delivery failure.

    ``produce`` only queues (librdkafka batches and sends in its own thread, a few µs per
    message); ``check`` serves the delivery reports so far; ``finish`` waits for the rest.
    """

    def __init__(self, settings: Settings) -> None:
        self.producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "queue.buffering.max.messages": 500_000,
                "message.timeout.ms": int(settings.kafka_timeout_s * 3_000),
            }
        )
        self.offsets: dict[tuple[str, int], int] = {}
        self.failures: list[KafkaError] = []

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failures.append(error)
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            return
        if offset > self.offsets.get((topic, partition), -1):
            self.offsets[topic, partition] = offset

    def produce(self, topic: str, value: bytes, key: str) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, on_delivery=self._delivered)
                return
            except BufferError:  # the local queue is full: let librdkafka send some
                self.producer.poll(0.05)

    def check(self) -> None:
        self.producer.poll(0)
        if self.failures:
            raise KafkaException(self.failures[0])

    def finish(self, timeout_s: float) -> None:
        left = self.producer.flush(timeout_s)
        self.check()
        if left:
            raise KafkaException(
                KafkaError(
                    KafkaError._MSG_TIMED_OUT, f"{left} events not acknowledged in {timeout_s:.0f}s"
                )
            )
