"""The idempotent aiokafka producer that every ingestion path shares."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import suppress
from typing import TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from infra.errors import ServiceUnavailable
from ingest.validation import encode
from schemas.events import Event
from schemas.headers import correlation_headers
from schemas.settings import Settings
from schemas.topics import Topic

# Messages sent between turns of the event loop: each send is ~20-40 us of the client's
# Python, and a batch sent in one turn held the API's loop (55 served lists: ~2 ms, the lists'
# p99; docs/scaling.md, *The lists' objects, and the served-list log's turns*).
TURN_EVERY = 16

T = TypeVar("T")


async def in_turns(items: Iterable[T]) -> AsyncIterator[T]:
    """``items`` in order, with a turn of the event loop after every :data:`TURN_EVERY` of
    them: for a loop of short synchronous steps that would otherwise hold the event loop
    (the requests waiting behind it) for all of its items."""
    for n, item in enumerate(items, 1):
        yield item
        if n % TURN_EVERY == 0:
            await asyncio.sleep(0)


def aiokafka_producer(settings: Settings, linger_ms: int = 2) -> AIOKafkaProducer:
    """An idempotent producer that waits for all in-sync replicas (acks=all)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        request_timeout_ms=int(settings.kafka_timeout_s * 1000),
    )


class EventProducer:
    """Produces validated events to their topics with acks=all and idempotence.

    Created once per process (the API's lifespan, a CLI run) and started lazily, so a
    process can come up while Kafka is still starting and report it instead of crashing.
    Callers that start it at the same time share one connection attempt, so a broker that
    does not answer costs each of them one timeout, not one each in turn.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._starting: asyncio.Future[None] | None = None

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def start(self, timeout_s: float | None = None) -> None:
        """Connect to the broker; ServiceUnavailable if it does not answer within
        ``timeout_s`` (default ``TILLFLOW_KAFKA_TIMEOUT_S``)."""
        if self._producer is not None:
            return
        if self._starting is None:
            timeout = self.settings.kafka_timeout_s if timeout_s is None else timeout_s
            self._starting = asyncio.ensure_future(self._connect(timeout))
        await asyncio.shield(self._starting)

    async def _connect(self, timeout_s: float) -> None:
        producer = aiokafka_producer(self.settings)
        try:
            await asyncio.wait_for(producer.start(), timeout=timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            await producer.stop()
            raise ServiceUnavailable(
                "Kafka", self.settings.kafka_bootstrap, f"the producer cannot connect ({exc!r})"
            ) from None
        finally:
            self._starting = None
        self._producer = producer

    async def check(self, timeout_s: float) -> None:
        """Connect if needed, else ask the brokers for metadata: ServiceUnavailable if Kafka
        does not answer within ``timeout_s`` (a started producer does not notice by itself)."""
        if self._producer is None:
            await self.start(timeout_s)
            return
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout=timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise ServiceUnavailable(
                "Kafka", self.settings.kafka_bootstrap, f"no broker answers ({exc!r})"
            ) from None

    async def stop(self) -> None:
        if self._starting is not None:
            with suppress(ServiceUnavailable):
                await self._starting
        if self._producer is not None:
            producer, self._producer = self._producer, None
            # stop() flushes what is queued; with the broker away that would wait for ever.
            with suppress(TimeoutError):
                await asyncio.wait_for(producer.stop(), timeout=self.settings.kafka_timeout_s)

    async def send_all(
        self,
        topic: Topic,
        events: Sequence[Event],
        correlation_id: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """Produce ``events`` to ``topic`` and wait until the broker acknowledged all of them
        (at most ``timeout_s``, default twice ``TILLFLOW_KAFKA_TIMEOUT_S``).

        ``correlation_id`` (e.g. the API's request id) travels in the ``x-correlation-id``
        header of every message, so the flows' logs and dead letters can name it.
        """
        await self.start(timeout_s)
        producer = self._producer
        assert producer is not None
        name = self.settings.topic(topic)
        headers = correlation_headers(correlation_id) or None

        async def produce_all() -> None:
            # send() itself waits for topic metadata when the broker is away: bounded too.
            futures = []
            async for e in in_turns(events):  # send() rarely suspends: the loop gets turns
                futures.append(
                    await producer.send(name, value=encode(e), key=topic.key_of(e), headers=headers)
                )
            await asyncio.gather(*futures)

        wait = self.settings.kafka_timeout_s * 2 if timeout_s is None else timeout_s
        try:
            await asyncio.wait_for(produce_all(), timeout=wait)
        except (KafkaError, TimeoutError) as exc:
            raise ServiceUnavailable(
                "Kafka", self.settings.kafka_bootstrap, f"produce to {name} failed ({exc!r})"
            ) from None
