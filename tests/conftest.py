"""Shared fixtures: settings isolated per test run, and factories for the real services.

Integration tests (marked ``integration``) talk to the Kafka and Redis that ``tillflow up``
starts (``make check`` does it). When they are not running the tests fail with a message
that says so: they are never skipped. With ``TILLFLOW_REDIS_CLUSTER=true`` (``make
test-cluster``, for the tests marked ``cluster``) the same tests run against a Redis Cluster:
every client comes from ``infra.clients``, which follows that setting.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator

import orjson

# Feast's import sets PROMETHEUS_MULTIPROC_DIR in the environment; prometheus_client picks its
# value store when first imported. Import it first, so every in-process metric keeps plain
# per-registry values whatever order the test modules (some import Feast) are collected in.
import prometheus_client  # noqa: F401
import pytest
import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from pydantic import SecretStr

from infra.clients import SyncRedis
from infra.clients import redis_client as new_redis_client
from infra.errors import ServiceUnavailable
from infra.readiness import require_kafka, require_redis
from infra.stack.topics import delete_topics, ensure_topics
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, Topic
from tests.own_cluster import own_cluster


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def settings(run_id: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose topics, Redis keys, MLflow model names and catalogue file are unique to
    this test run, with secrets of their own (outside development the development ones are
    refused)."""
    return Settings(
        environment="test",
        topic_prefix=f"test-{run_id}.",
        redis_prefix=f"test-{run_id}:",
        mlflow_model_prefix=f"test-{run_id}-",
        kafka_timeout_s=10,
        jwt_secret=SecretStr(secrets.token_urlsafe(32)),
        admin_password=SecretStr(secrets.token_urlsafe(32)),
        catalogue_file=tmp_path_factory.mktemp("catalogue") / "catalogue.jsonl",
    )


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Settings]:
    """The real Kafka and Redis, with this run's topics created (and deleted afterwards)."""
    try:
        require_kafka(settings, timeout_s=10)
        require_redis(settings)
    except ServiceUnavailable as exc:
        pytest.fail(f"integration tests need the local stack: {exc}", pytrace=False)
    ensure_topics(settings)
    yield settings
    delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])
    client = new_redis_client(settings)
    keys = list(client.scan_iter(f"{settings.redis_prefix}*"))  # on a cluster: every master's
    if keys:
        client.delete(*keys)  # a cluster client deletes slot by slot
    client.close()


@pytest.fixture
def redis_client(stack: Settings) -> Iterator[SyncRedis]:
    client = new_redis_client(stack, decode_responses=True)
    yield client
    client.close()


_NO_LEADER_YET = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}


@pytest.fixture
def end_offsets(stack: Settings) -> Callable[[Topic], int]:
    """Total number of messages in a topic (sum of partition high-water marks)."""

    def total(topic: Topic) -> int:
        consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": "offsets"})
        name = stack.topic(topic)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    parts = consumer.list_topics(name, timeout=10).topics[name].partitions
                    return sum(
                        consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                        for p in parts
                    )
                except KafkaException as exc:
                    # a new topic's partitions get their leader a moment after creation
                    if exc.args[0].code() not in _NO_LEADER_YET or time.monotonic() > deadline:
                        raise
                    consumer.poll(0.2)
        finally:
            consumer.close()

    return total


Message = tuple[bytes | None, dict[str, object]]


@pytest.fixture
def consume(stack: Settings) -> Callable[..., list[Message]]:
    """Read a topic from the beginning until ``count`` messages (that match ``where``) arrived,
    or until ``timeout_s`` passed."""

    def read(
        topic: Topic,
        count: int,
        timeout_s: float = 20.0,
        where: Callable[[dict[str, object]], bool] | None = None,
    ) -> list[Message]:
        consumer = Consumer(
            {
                "bootstrap.servers": stack.kafka_bootstrap,
                "group.id": f"test-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([stack.topic(topic)])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        try:
            while len(messages) < count and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                value = orjson.loads(msg.value())
                if where is None or where(value):
                    messages.append((msg.key(), value))
        finally:
            consumer.close()
        return messages

    return read


@pytest.fixture(scope="module")
def own_redis(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis of this test module alone, on a free port: a test may flush or break it
    without touching the shared one. Yields its URL. When the run is against a Redis Cluster,
    it is a cluster of its own, started by the product's launcher."""
    if settings.redis_cluster:
        with own_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
            yield cluster.redis_url
        return
    import shutil
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    data = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"redis-server did not start on port {port}", pytrace=False)
    client.close()
    yield url
    proc.terminate()
    proc.wait(10)
