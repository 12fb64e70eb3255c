"""The clients of the services, configured once from the settings."""

from __future__ import annotations

import redis
from confluent_kafka.admin import AdminClient

from schemas.settings import Settings


def kafka_admin(settings: Settings) -> AdminClient:
    """An admin client for topic metadata and management (librdkafka's logs silenced)."""
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})


def redis_client(
    settings: Settings, *, decode_responses: bool = False, timeout_s: float | None = None
) -> redis.Redis:
    """A Redis client whose socket waits are bounded (``TILLFLOW_REDIS_TIMEOUT_S``)."""
    timeout = settings.redis_timeout_s if timeout_s is None else timeout_s
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=decode_responses,
    )
