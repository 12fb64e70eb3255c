"""The local stack as a whole: ``tillflow up`` / ``down`` / ``status``."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from infra.stack import kafka
from infra.stack import redis as redis_service
from infra.stack.processes import ServiceFiles, running_pid, terminate
from schemas.settings import Settings


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    address: str
    state: str  # "running", "stopped", "external" (answering, but not started by us)
    pid: int | None
    log: str


def _redis_answers(settings: Settings) -> bool:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _kafka_answers(settings: Settings) -> bool:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0})
    try:
        return bool(admin.list_topics(timeout=1).brokers)
    except Exception:  # noqa: BLE001
        return False


def up(settings: Settings) -> list[ServiceStatus]:
    """Start Redis and Kafka (each unless already answering) and wait until both are ready."""
    if running_pid(redis_service.files(settings)) is None and not _redis_answers(settings):
        redis_service.start(settings)
    redis_service.wait_ready(settings)
    if running_pid(kafka.files(settings)) is None and not _kafka_answers(settings):
        kafka.start(settings)
    kafka.wait_ready(settings)
    return status(settings)


def down(settings: Settings) -> list[str]:
    """Stop what ``up`` started; return the names of the services that were stopped."""
    stopped = []
    for name, svc in (("kafka", kafka.files(settings)), ("redis", redis_service.files(settings))):
        if terminate(svc):
            stopped.append(name)
    return stopped


def _status(name: str, address: str, svc: ServiceFiles, answers: bool) -> ServiceStatus:
    pid = running_pid(svc)
    state = "running" if pid is not None else ("external" if answers else "stopped")
    return ServiceStatus(name, address, state, pid, str(svc.log_file))


def status(settings: Settings) -> list[ServiceStatus]:
    """What runs where."""
    return [
        _status("kafka", settings.kafka_bootstrap, kafka.files(settings), _kafka_answers(settings)),
        _status(
            "redis", settings.redis_url, redis_service.files(settings), _redis_answers(settings)
        ),
    ]
