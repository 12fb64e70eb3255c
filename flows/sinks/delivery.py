"""A Kafka producer whose batches are delivered, however long the broker is away.

librdkafka queues what ``produce`` is given and retries it; with
``message.timeout.ms=0`` it never expires a message, and with idempotence its retries do
not duplicate. :meth:`Delivering.deliver` waits until the queue is empty; a message that
failed anyway (a fatal producer error) is produced again by a new producer, so nothing
given to :meth:`Delivering.deliver` is ever dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

FLUSH_S = 5.0  # one wait for delivery; the caller's backoff loop decides how often to wait


class Pending(Exception):
    """Messages are not delivered yet: the broker is away or slow (retried by the caller)."""


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes
    value: bytes


def delivering_producer(bootstrap: str) -> Producer:
    """acks=all, idempotent, no message timeout: messages wait in the queue, never expire."""
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 0,
            "log_level": 3,
        }
    )


class Delivering:
    """Produces batches and returns only once every message was acknowledged."""

    def __init__(self, new_producer: Callable[[], Producer]) -> None:
        self.new_producer = new_producer
        self.producer = new_producer()
        self.failed: list[Outgoing] = []

    def produce(self, messages: Sequence[Outgoing]) -> None:
        """Queue ``messages``; :meth:`deliver` waits for them."""
        for m in messages:
            self._produce(m)

    def _produce(self, m: Outgoing) -> None:
        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self.failed.append(m)

        self.producer.produce(m.topic, value=m.value, key=m.key, on_delivery=on_delivery)

    def deliver(self) -> None:
        """Return once everything produced is acknowledged; raise :class:`Pending` if some is
        still queued after one wait (call again: the queue is kept)."""
        left = self.producer.flush(FLUSH_S)
        if left:
            raise Pending(f"{left} message(s) not yet acknowledged by Kafka")
        if self.failed:
            again, self.failed = self.failed, []
            self.producer = self.new_producer()  # a failed idempotent producer is unusable
            for m in again:
                self._produce(m)
            raise Pending(f"{len(again)} message(s) failed and were produced again")

    def close(self) -> None:
        self.producer.flush(FLUSH_S)
