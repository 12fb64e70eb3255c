"""Fail fast, and readably, when a service tillflow needs is not there.

librdkafka retries an unreachable broker forever with only log lines, and a Redis
client waits for its socket timeout on every call; these checks run once at start-up
and raise :class:`ServiceUnavailable` naming the service, its address and the fix.
"""

from __future__ import annotations

import json
import urllib.request

import redis
from confluent_kafka.admin import ClusterMetadata  # type: ignore[attr-defined]

from infra.clients import SyncRedis, kafka_admin, neo4j_driver, redis_client
from infra.errors import ServiceUnavailable
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
    client: SyncRedis | None = None
    try:
        client = redis_client(settings, timeout_s=timeout_s)  # a cluster client connects here
        client.ping()
    except redis.RedisError as exc:
        raise ServiceUnavailable(
            "Redis", settings.redis_url, f"{exc}; {START_HINT} TILLFLOW_REDIS_URL"
        ) from None
    finally:
        if client is not None:
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


def require_neo4j(settings: Settings, timeout_s: float | None = None) -> None:
    """Raise ServiceUnavailable if Neo4j does not answer on Bolt."""
    import neo4j  # here, not at the top: the flows and the API import this module

    timeout = settings.neo4j_timeout_s if timeout_s is None else timeout_s
    driver = neo4j_driver(settings.model_copy(update={"neo4j_timeout_s": timeout}))
    try:
        driver.verify_connectivity()
    except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, OSError) as exc:
        raise ServiceUnavailable(
            "Neo4j", settings.neo4j_uri, f"{exc}; {START_HINT} TILLFLOW_NEO4J_URI"
        ) from None
    finally:
        driver.close()


def neo4j_answers(settings: Settings, timeout_s: float) -> bool:
    """Whether Neo4j answers on Bolt within ``timeout_s`` (never raises)."""
    try:
        require_neo4j(settings, timeout_s)
    except ServiceUnavailable:
        return False
    return True


def require_opensearch(settings: Settings, timeout_s: float | None = None) -> str:
    """Return the cluster health status (``green``/``yellow``); ServiceUnavailable otherwise.

    A ``red`` cluster (a primary shard unassigned, e.g. while the node recovers) counts as not
    answering: searches on it would fail.
    """
    timeout = settings.opensearch_timeout_s if timeout_s is None else timeout_s
    url = f"{settings.opensearch_url.rstrip('/')}/_cluster/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            health = str(json.loads(response.read())["status"])
    except (OSError, ValueError, KeyError) as exc:
        raise ServiceUnavailable(
            "OpenSearch", settings.opensearch_url, f"{exc}; {START_HINT} TILLFLOW_OPENSEARCH_URL"
        ) from None
    if health not in ("green", "yellow"):
        raise ServiceUnavailable("OpenSearch", settings.opensearch_url, f"cluster is {health}")
    return health


def opensearch_answers(settings: Settings, timeout_s: float) -> bool:
    """Whether OpenSearch answers with a usable cluster within ``timeout_s`` (never raises)."""
    try:
        require_opensearch(settings, timeout_s)
    except ServiceUnavailable:
        return False
    return True


def require_mlflow(settings: Settings, timeout_s: float | None = None) -> None:
    """Raise ServiceUnavailable if the MLflow tracking server does not answer ``/health``."""
    timeout = settings.mlflow_timeout_s if timeout_s is None else timeout_s
    url = f"{settings.mlflow_url.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            healthy = response.status == 200
    except OSError as exc:
        raise ServiceUnavailable(
            "MLflow", settings.mlflow_url, f"{exc}; {START_HINT} TILLFLOW_MLFLOW_URL"
        ) from None
    if not healthy:
        raise ServiceUnavailable("MLflow", settings.mlflow_url, "/health did not answer 200")


def mlflow_answers(settings: Settings, timeout_s: float) -> bool:
    """Whether the MLflow tracking server answers within ``timeout_s`` (never raises)."""
    try:
        require_mlflow(settings, timeout_s)
    except ServiceUnavailable:
        return False
    return True
