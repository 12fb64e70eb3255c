"""A Kafka producer whose batches are delivered, however long the broker is away.

librdkafka queues what ``produce`` is given and retries it; with
``message.timeout.ms=0`` it never expires a message, and with idempotence its retries do
not duplicate. :meth:`Delivering.deliver` waits until the queue is empty; a message that
failed anyway (a fatal producer error) is produced again by a new producer, so nothing
given to :meth:`Delivering.deliver` is ever dropped.
"""

from __future__ import annotations

from collections import Counter
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
    """Produces batches and returns only once every message was acknowledged.

    It counts the messages waiting per topic, so that a wait names where they are stuck (a
    topic deleted while the flow runs waits here, with the sink reported blocked, until it is
    created again)."""

    def __init__(self, new_producer: Callable[[], Producer]) -> None:
        self.new_producer = new_producer
        self.producer = new_producer()
        self.failed: list[Outgoing] = []
        self.errors: set[str] = set()
        self.waiting: Counter[str] = Counter()

    def produce(self, messages: Sequence[Outgoing]) -> None:
        """Queue ``messages``; :meth:`deliver` waits for them."""
        for m in messages:
            self._produce(m)

    def _produce(self, m: Outgoing) -> None:
        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            self.waiting[m.topic] -= 1
            if err is not None:
                self.failed.append(m)
                self.errors.add(f"{m.topic}: {err.str()}")

        self.producer.produce(m.topic, value=m.value, key=m.key, on_delivery=on_delivery)
        self.waiting[m.topic] += 1

    def deliver(self) -> None:
        """Return once everything produced is acknowledged; raise :class:`Pending` if some is
        still queued after one wait (call again: the queue is kept)."""
        if self.producer.flush(FLUSH_S):
            raise Pending(f"not yet acknowledged by Kafka: {self.describe_waiting()}")
        if self.failed:
            again, self.failed = self.failed, []
            errors, self.errors = "; ".join(sorted(self.errors)), set()
            self.waiting.clear()
            self.producer = self.new_producer()  # a failed idempotent producer is unusable
            for m in again:
                self._produce(m)
            raise Pending(f"{len(again)} message(s) failed ({errors}) and were produced again")

    def describe_waiting(self) -> str:
        """The messages waiting for an acknowledgement, per topic: ``"3 to orders"``."""
        waiting = sorted((t, n) for t, n in self.waiting.items() if n > 0)
        return ", ".join(f"{n} to {t}" for t, n in waiting) or "none"

    def close(self) -> None:
        self.producer.flush(FLUSH_S)
