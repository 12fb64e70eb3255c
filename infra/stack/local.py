"""The local stack as a whole: ``tillflow up`` / ``down`` / ``status``."""

from __future__ import annotations

import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from infra.readiness import kafka_answers, neo4j_answers, redis_answers
from infra.stack import kafka
from infra.stack import neo4j as neo4j_service
from infra.stack import redis as redis_service
from infra.stack.errors import StackError
from infra.stack.processes import (
    ServiceFiles,
    log_tail,
    running_pid,
    spawn,
    terminate,
    wait_until_ready,
)
from schemas.settings import Settings


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    address: str
    state: str  # "running", "stopped", "external" (answering, but not started by us)
    pid: int | None
    log: str


def up(settings: Settings) -> list[ServiceStatus]:
    """Start Redis, Kafka and Neo4j (each unless already answering); wait until all are ready."""
    if running_pid(redis_service.files(settings)) is None and not redis_answers(settings, 0.5):
        redis_service.start(settings)
    redis_service.wait_ready(settings)
    if running_pid(kafka.files(settings)) is None and not kafka_answers(settings, 1.0):
        kafka.start(settings)
    kafka.wait_ready(settings)
    if running_pid(neo4j_service.files(settings)) is None and not neo4j_answers(settings, 2.0):
        neo4j_service.start(settings)
    neo4j_service.wait_ready(settings)
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

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_until_ready(svc, "The API", url, healthy, timeout_s)
    return pid


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
        ("neo4j", neo4j_service.files(settings)),
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
        _status(
            "kafka", settings.kafka_bootstrap, kafka.files(settings), kafka_answers(settings, 1.0)
        ),
        _status(
            "redis", settings.redis_url, redis_service.files(settings), redis_answers(settings, 0.5)
        ),
        _status(
            "neo4j",
            settings.neo4j_uri,
            neo4j_service.files(settings),
            neo4j_answers(settings, 1.0),
        ),
        _status("api", api_address, api_files(settings), False),
        _status("flows", f"{settings.flow_processes} process(es)", flows_files(settings), False),
    ]
