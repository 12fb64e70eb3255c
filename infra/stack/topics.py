"""Create the contract's topics with their configured partition counts (idempotent)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewPartitions, NewTopic  # type: ignore[attr-defined]

from infra.clients import kafka_admin
from infra.errors import StackError
from infra.readiness import require_kafka
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, Topic


@dataclass(frozen=True, slots=True)
class TopicState:
    name: str
    partitions: int
    action: str  # "created", "exists", "grown"


def ensure_topics(settings: Settings, topics: tuple[Topic, ...] = ALL_TOPICS) -> list[TopicState]:
    """Create missing topics and grow under-partitioned ones; return what was done."""
    meta = require_kafka(settings)
    admin = kafka_admin(settings)
    wanted = {settings.topic(t): settings.partitions(t) for t in topics}
    states: list[TopicState] = []
    to_create = [
        NewTopic(name, num_partitions=n, replication_factor=settings.replication_factor)
        for name, n in wanted.items()
        if name not in meta.topics
    ]
    to_grow = {
        name: n
        for name, n in wanted.items()
        if name in meta.topics and len(meta.topics[name].partitions) < n
    }
    created = admin.create_topics(to_create, operation_timeout=30) if to_create else {}
    for name, future in created.items():
        try:
            future.result()
            states.append(TopicState(name, wanted[name], "created"))
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise StackError(f"could not create topic {name}: {exc}") from None
            states.append(TopicState(name, wanted[name], "exists"))
    if to_grow:
        grow = [NewPartitions(name, n) for name, n in to_grow.items()]
        for name, future in admin.create_partitions(grow, operation_timeout=30).items():
            future.result()
            states.append(TopicState(name, wanted[name], "grown"))
    for name, n in wanted.items():
        if name in meta.topics and name not in to_grow:
            states.append(TopicState(name, max(n, len(meta.topics[name].partitions)), "exists"))
    if to_create:
        _wait_visible(settings, list(wanted))
    return sorted(states, key=lambda s: s.name)


def _wait_visible(settings: Settings, names: list[str]) -> None:
    """Wait until the broker's metadata lists ``names``: a KRaft broker answers
    ``create_topics`` once the controller committed them, and may list them a moment later."""
    deadline = time.monotonic() + settings.kafka_timeout_s
    while True:
        missing = set(names) - set(require_kafka(settings).topics)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise StackError(f"created topics {sorted(missing)} are still not listed by Kafka")
        time.sleep(0.1)


def delete_topics(settings: Settings, names: list[str]) -> None:
    """Delete topics by broker-side name (used by tests to clean up their prefixes)."""
    if not names:
        return
    admin = kafka_admin(settings)
    for future in admin.delete_topics(names, operation_timeout=30).values():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
