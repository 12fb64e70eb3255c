"""The clients of the services, configured once from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis
from confluent_kafka.admin import AdminClient
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterPipeline, RedisCluster
from redis.retry import Retry

from schemas.settings import Settings

if TYPE_CHECKING:  # the driver is imported where one is made: neo4j loads pandas (~1 s a process)
    import neo4j


def kafka_admin(settings: Settings) -> AdminClient:
    """An admin client for topic metadata and management (librdkafka's logs silenced)."""
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})


SyncRedis = redis.Redis | RedisCluster
"""What :func:`redis_client` returns: one Redis, or a Redis Cluster (``TILLFLOW_REDIS_CLUSTER``).
Both take the same commands; a cluster pipeline sends each command to its key's master, and a
transaction must keep to one hash slot (schemas/keys.py tags the keys used together)."""
SyncPipeline = redis.client.Pipeline | ClusterPipeline
AsyncRedis = aioredis.Redis | AsyncRedisCluster


def redis_client(
    settings: Settings,
    *,
    decode_responses: bool = False,
    timeout_s: float | None = None,
    retries: int = 0,
) -> SyncRedis:
    """The Redis client of every part of tillflow: a :class:`redis.cluster.RedisCluster` that
    discovers the masters from ``TILLFLOW_REDIS_URL`` when ``TILLFLOW_REDIS_CLUSTER`` is set,
    else a plain client. Socket waits are bounded (``TILLFLOW_REDIS_TIMEOUT_S``).

    With ``retries``, timeouts and dropped connections are retried with exponential backoff
    (capped at 2 s): only for callers whose writes are idempotent. A cluster of which no node
    answers raises ``redis.ConnectionError`` here already, as a plain client would at its first
    command.
    """
    timeout = settings.redis_timeout_s if timeout_s is None else timeout_s
    extra: dict[str, Any] = {}
    if retries:
        extra["retry"] = Retry(ExponentialBackoff(cap=2.0, base=0.1), retries)
        extra["retry_on_error"] = [redis.exceptions.TimeoutError, redis.exceptions.ConnectionError]
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "decode_responses": decode_responses,
        **extra,
    }
    if settings.redis_cluster:
        try:  # the cluster client asks a node for the slot map as it is created
            return RedisCluster.from_url(settings.redis_url, **options)
        except redis.exceptions.RedisClusterException as exc:
            raise redis.ConnectionError(f"Redis Cluster: {exc}") from exc
    return redis.Redis.from_url(settings.redis_url, **options)


def queue_publish(pipe: SyncPipeline, channel: str, message: str) -> None:
    """Queue a PUBLISH on ``pipe``. A cluster pipeline refuses ``publish()``, its guard against
    commands it cannot route by key; PUBLISH needs none (any master passes the message to the
    subscribers of every node), so it is queued as a plain command."""
    pipe.execute_command("PUBLISH", channel, message)  # type: ignore[no-untyped-call]


def queue_eval(pipe: SyncPipeline, script: str, key: str, *args: str | int) -> None:
    """Queue an EVAL of ``script`` over the one key ``key`` on ``pipe``. A cluster pipeline
    refuses ``eval()``, which may name keys of several slots; with one key it goes to that
    key's master."""
    pipe.execute_command("EVAL", script, 1, key, *args)  # type: ignore[no-untyped-call]


def async_redis_client(
    settings: Settings,
    *,
    decode_responses: bool = False,
    timeout_s: float | None = None,
    command_timeouts: bool = True,
) -> AsyncRedis:
    """The asyncio twin of :func:`redis_client` (the API, the simulator); no health-check
    round trips: a failed command already says Redis is away.

    ``command_timeouts=False`` leaves only the connect timeout, for a caller that bounds
    each of its calls itself (the API's ``api/redis_gate.py``): with a socket timeout,
    redis-py runs every send as a task of its own (``asyncio.wait_for``) and reads every
    reply of a pipeline under a timer of its own.
    """
    timeout = settings.redis_timeout_s if timeout_s is None else timeout_s
    options: dict[str, Any] = {
        "socket_timeout": timeout if command_timeouts else None,
        "socket_connect_timeout": timeout,
        "decode_responses": decode_responses,
    }
    if settings.redis_cluster:
        return AsyncRedisCluster.from_url(settings.redis_url, **options)
    return aioredis.Redis.from_url(settings.redis_url, health_check_interval=0, **options)


def async_pubsub_client(settings: Settings, *, timeout_s: float) -> aioredis.Redis:
    """A plain asyncio client of the node that ``TILLFLOW_REDIS_URL`` names, for SUBSCRIBE.

    On a Redis Cluster, PUBLISH reaches the subscribers of every node, so one node serves
    every channel (the asyncio cluster client has no pub/sub of its own).
    """
    return aioredis.Redis.from_url(
        settings.redis_url, decode_responses=True, socket_connect_timeout=timeout_s
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
    import neo4j

    return neo4j.GraphDatabase.driver(settings.neo4j_uri, **_neo4j_options(settings))


def neo4j_async_driver(settings: Settings) -> neo4j.AsyncDriver:
    """The asyncio driver for the API, bounded like :func:`neo4j_driver`."""
    import neo4j

    return neo4j.AsyncGraphDatabase.driver(settings.neo4j_uri, **_neo4j_options(settings))
