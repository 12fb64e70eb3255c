"""The local stack as a whole: ``tillflow up`` / ``down`` / ``status``."""

from __future__ import annotations

import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import redis

from infra.stack import kafka
from infra.stack import redis as redis_service
from infra.stack.errors import StackError
from infra.stack.processes import ServiceFiles, log_tail, running_pid, spawn, terminate
from schemas.settings import Settings


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    address: str
    state: str  # "running", "stopped", "external" (answering, but not started by us)
    pid: int | None
    log: str


def _redis_answers(settings: Settings) -> bool:
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
    )
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


def api_files(settings: Settings) -> ServiceFiles:
    return ServiceFiles(settings.runtime_dir, "api")


def start_api(settings: Settings, timeout_s: float = 30.0) -> int:
    """Start the HTTP API (``tillflow api``) detached and wait for ``/healthz``; return its pid."""
    svc = api_files(settings)
    pid = running_pid(svc)
    if pid is None:
        pid = spawn(svc, [sys.executable, "-m", "cli", "api"], env={"PYTHONPATH": str(Path.cwd())})
    url = f"http://{settings.api_host}:{settings.api_port}/healthz"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if running_pid(svc) is None:
            raise StackError(f"the API exited during start-up. Last log lines:\n{log_tail(svc)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return pid
        except OSError:
            time.sleep(0.2)
    raise StackError(f"the API did not answer {url} within {timeout_s:.0f}s:\n{log_tail(svc)}")


def flows_files(settings: Settings) -> ServiceFiles:
    return ServiceFiles(settings.runtime_dir, "flows")


def start_flows(settings: Settings) -> int:
    """Start the dataflow (``tillflow flows run``) detached; return its pid (idempotent)."""
    svc = flows_files(settings)
    pid = running_pid(svc)
    if pid is None:
        pid = spawn(
            svc, [sys.executable, "-m", "cli", "flows", "run"], env={"PYTHONPATH": str(Path.cwd())}
        )
    time.sleep(1.0)
    if running_pid(svc) is None:
        raise StackError(f"the flows exited during start-up. Last log lines:\n{log_tail(svc)}")
    return pid


def down(settings: Settings) -> list[str]:
    """Stop what ``up`` and ``demo`` started; return the names of the services stopped."""
    stopped = []
    services = (
        ("flows", flows_files(settings)),
        ("api", api_files(settings)),
        ("kafka", kafka.files(settings)),
        ("redis", redis_service.files(settings)),
    )
    for name, svc in services:
        if terminate(svc):
            stopped.append(name)
    return stopped


def _status(name: str, address: str, svc: ServiceFiles, answers: bool) -> ServiceStatus:
    pid = running_pid(svc)
    state = "running" if pid is not None else ("external" if answers else "stopped")
    return ServiceStatus(name, address, state, pid, str(svc.log_file))


def status(settings: Settings) -> list[ServiceStatus]:
    """What runs where."""
    api_address = f"http://{settings.api_host}:{settings.api_port}"
    return [
        _status("kafka", settings.kafka_bootstrap, kafka.files(settings), _kafka_answers(settings)),
        _status(
            "redis", settings.redis_url, redis_service.files(settings), _redis_answers(settings)
        ),
        _status("api", api_address, api_files(settings), False),
        _status("flows", f"{settings.flow_processes} process(es)", flows_files(settings), False),
    ]
