"""The clients of the services, configured once from the settings."""

from __future__ import annotations

from typing import Any

import neo4j
import redis
from confluent_kafka.admin import AdminClient
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from schemas.settings import Settings


def kafka_admin(settings: Settings) -> AdminClient:
    """An admin client for topic metadata and management (librdkafka's logs silenced)."""
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})


def redis_client(
    settings: Settings,
    *,
    decode_responses: bool = False,
    timeout_s: float | None = None,
    retries: int = 0,
) -> redis.Redis:
    """A Redis client whose socket waits are bounded (``TILLFLOW_REDIS_TIMEOUT_S``).

    With ``retries``, timeouts and dropped connections are retried with exponential backoff
    (capped at 2 s): only for callers whose writes are idempotent.
    """
    timeout = settings.redis_timeout_s if timeout_s is None else timeout_s
    extra: dict[str, Any] = {}
    if retries:
        extra["retry"] = Retry(ExponentialBackoff(cap=2.0, base=0.1), retries)
        extra["retry_on_error"] = [redis.exceptions.TimeoutError, redis.exceptions.ConnectionError]
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=decode_responses,
        **extra,
    )


def _neo4j_auth(settings: Settings) -> tuple[str, str] | None:
    password = settings.neo4j_password.get_secret_value()
    return (settings.neo4j_user, password) if password else None


def _neo4j_options(settings: Settings) -> dict[str, Any]:
    """Driver options shared by the sync and async drivers: every wait bounded."""
    t = settings.neo4j_timeout_s
    return {
        "auth": _neo4j_auth(settings),
        "connection_timeout": t,
        "connection_acquisition_timeout": t,
        "max_transaction_retry_time": t,
        "notifications_min_severity": "OFF",  # "index already exists" and such, on every load
    }


def neo4j_driver(settings: Settings) -> neo4j.Driver:
    """A Neo4j driver whose connection waits and retries are bounded (``TILLFLOW_NEO4J_*``)."""
    return neo4j.GraphDatabase.driver(settings.neo4j_uri, **_neo4j_options(settings))


def neo4j_async_driver(settings: Settings) -> neo4j.AsyncDriver:
    """The asyncio driver for the API, bounded like :func:`neo4j_driver`."""
    return neo4j.AsyncGraphDatabase.driver(settings.neo4j_uri, **_neo4j_options(settings))
