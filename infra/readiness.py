"""Fail fast, and readably, when a service tillflow needs is not there.

librdkafka retries an unreachable broker forever with only log lines, and a Redis
client waits for its socket timeout on every call; these checks run once at start-up
and raise :class:`ServiceUnavailable` naming the service, its address and the fix.
"""

from __future__ import annotations

import redis
from confluent_kafka.admin import ClusterMetadata  # type: ignore[attr-defined]

from infra.clients import kafka_admin, redis_client
from infra.stack.errors import ServiceUnavailable
from schemas.settings import Settings

START_HINT = "start the local stack with `tillflow up` (or `make up`), or set the address"


def require_kafka(settings: Settings, timeout_s: float | None = None) -> ClusterMetadata:
    """Return the cluster metadata, or raise ServiceUnavailable if no broker answers."""
    timeout = settings.kafka_timeout_s if timeout_s is None else timeout_s
    try:
        meta = kafka_admin(settings).list_topics(timeout=timeout)
    except Exception as exc:  # noqa: BLE001  (KafkaException or transport errors alike)
        raise ServiceUnavailable(
            "Kafka",
            settings.kafka_bootstrap,
            f"no broker answered within {timeout:.0f}s ({exc}); {START_HINT} "
            "TILLFLOW_KAFKA_BOOTSTRAP",
        ) from None
    return meta


def require_topics(settings: Settings, names: list[str], timeout_s: float | None = None) -> None:
    """Raise ServiceUnavailable naming the topics of ``names`` that the broker lacks."""
    meta = require_kafka(settings, timeout_s)
    missing = sorted(set(names) - set(meta.topics))
    if missing:
        raise ServiceUnavailable(
            "Kafka",
            settings.kafka_bootstrap,
            f"topics {', '.join(missing)} do not exist; create them with `tillflow topics create`",
        )


def require_redis(settings: Settings, timeout_s: float | None = None) -> None:
    """Raise ServiceUnavailable if Redis does not answer PING."""
    client = redis_client(settings, timeout_s=timeout_s)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ServiceUnavailable(
            "Redis", settings.redis_url, f"{exc}; {START_HINT} TILLFLOW_REDIS_URL"
        ) from None
    finally:
        client.close()


def kafka_answers(settings: Settings, timeout_s: float) -> bool:
    """Whether a broker answers metadata requests within ``timeout_s`` (never raises)."""
    try:
        return bool(require_kafka(settings, timeout_s).brokers)
    except ServiceUnavailable:
        return False


def redis_answers(settings: Settings, timeout_s: float) -> bool:
    """Whether Redis answers PING within ``timeout_s`` (never raises)."""
    try:
        require_redis(settings, timeout_s)
    except ServiceUnavailable:
        return False
    return True
