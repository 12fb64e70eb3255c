"""The idempotent aiokafka producer that every ingestion path shares."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from infra.stack.errors import ServiceUnavailable
from ingest.validation import encode
from schemas.events import Event
from schemas.headers import correlation_headers
from schemas.settings import Settings
from schemas.topics import Topic


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
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    @property
    def started(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect to the broker; ServiceUnavailable if it does not answer in time."""
        async with self._lock:
            if self._producer is not None:
                return
            producer = aiokafka_producer(self.settings)
            try:
                await asyncio.wait_for(producer.start(), timeout=self.settings.kafka_timeout_s)
            except (KafkaError, TimeoutError, OSError) as exc:
                await producer.stop()
                raise ServiceUnavailable(
                    "Kafka", self.settings.kafka_bootstrap, f"the producer cannot connect ({exc!r})"
                ) from None
            self._producer = producer

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    async def send_all(
        self, topic: Topic, events: Sequence[Event], correlation_id: str | None = None
    ) -> None:
        """Produce ``events`` to ``topic`` and wait until the broker acknowledged all of them.

        ``correlation_id`` (e.g. the API's request id) travels in the ``x-correlation-id``
        header of every message, so the flows' logs and dead letters can name it.
        """
        await self.start()
        assert self._producer is not None
        name = self.settings.topic(topic)
        headers = correlation_headers(correlation_id) or None
        try:
            futures = [
                await self._producer.send(
                    name, value=encode(e), key=topic.key_of(e), headers=headers
                )
                for e in events
            ]
            await asyncio.wait_for(
                asyncio.gather(*futures), timeout=self.settings.kafka_timeout_s * 2
            )
        except (KafkaError, TimeoutError) as exc:
            raise ServiceUnavailable(
                "Kafka", self.settings.kafka_bootstrap, f"produce to {name} failed ({exc!r})"
            ) from None
