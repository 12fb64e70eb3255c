"""The API's Kafka access: every produce bounded in time, and a short pause after a failure.

``POST /events`` waits at most ``TILLFLOW_API_KAFKA_TIMEOUT_S`` for the broker to connect
and acknowledge. When it fails, the gate is open for ``PAUSE_S``: requests answer 503
naming Kafka at once instead of each waiting again, and the first request after the
pause tries the broker again, so the API recovers by itself when Kafka is back. A request
that timed out may still be delivered later by the producer: a client retrying with the
same ``event_id`` is deduplicated by the flows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from infra.errors import ServiceUnavailable
from ingest.producer import EventProducer
from schemas.events import Event
from schemas.settings import Settings
from schemas.topics import Topic

PAUSE_S = 1.0


class KafkaGate:
    """The event producer behind a circuit breaker; created in the API's lifespan."""

    def __init__(
        self,
        producer: EventProducer,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.producer = producer
        self.timeout_s = settings.api_kafka_timeout_s
        self.address = settings.kafka_bootstrap
        self.clock = clock
        self._down_until = 0.0
        self.last_error = ""

    @property
    def down(self) -> bool:
        return self.clock() < self._down_until

    def _paused(self) -> ServiceUnavailable:
        return ServiceUnavailable(
            "Kafka", self.address, f"it failed less than {PAUSE_S:.0f} s ago ({self.last_error})"
        )

    def _failed(self, exc: ServiceUnavailable) -> ServiceUnavailable:
        self._down_until = self.clock() + PAUSE_S
        self.last_error = str(exc)
        return exc

    async def start(self) -> None:
        """Connect the producer; ServiceUnavailable naming Kafka if paused or it fails."""
        if self.down:
            raise self._paused()
        try:
            await self.producer.start(self.timeout_s)
        except ServiceUnavailable as exc:
            raise self._failed(exc) from None

    async def check(self) -> None:
        """Readiness: the broker answers now (ServiceUnavailable naming Kafka if not)."""
        if self.down:
            raise self._paused()
        try:
            await self.producer.check(self.timeout_s)
        except ServiceUnavailable as exc:
            raise self._failed(exc) from None

    async def send_all(
        self, topic: Topic, events: Sequence[Event], correlation_id: str | None = None
    ) -> None:
        """Produce and wait for the acknowledgements, within the timeout, or 503."""
        if self.down:
            raise self._paused()
        try:
            await self.producer.send_all(topic, events, correlation_id, timeout_s=self.timeout_s)
        except ServiceUnavailable as exc:
            raise self._failed(exc) from None
