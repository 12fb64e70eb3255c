"""The local stack as a whole: ``tillflow up`` / ``down`` / ``status``."""

from __future__ import annotations

import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from infra.errors import StackError
from infra.readiness import (
    kafka_answers,
    mlflow_answers,
    neo4j_answers,
    opensearch_answers,
    redis_answers,
)
from infra.stack import kafka, redis_cluster
from infra.stack import mlflow as mlflow_service
from infra.stack import neo4j as neo4j_service
from infra.stack import opensearch as opensearch_service
from infra.stack import prometheus as prometheus_service
from infra.stack import redis as redis_service
from infra.stack import rsyslog as rsyslog_service
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
    state: str  # "running", "stopped", "external" (answering, not started by us), "not ready"
    pid: int | None
    log: str


def _ensure(
    files: ServiceFiles,
    answers: Callable[[], bool],
    start: Callable[[], int],
    wait: Callable[[], None],
) -> None:
    """Use a service that answers as is (ours or not); else start it unless ours runs; wait."""
    if answers():
        return
    if running_pid(files) is None:
        start()
    wait()


def up(settings: Settings) -> list[ServiceStatus]:
    """Start Redis (or, with ``TILLFLOW_REDIS_CLUSTER``, a local Redis Cluster), Kafka, Neo4j,
    OpenSearch, MLflow and Prometheus (each unless already answering), then rsyslog, which
    ships every service log into OpenSearch.

    OpenSearch and MLflow are started first and awaited last: their start-ups are the slowest,
    and they overlap with the others'.
    """
    r, k, n, p, o = redis_service, kafka, neo4j_service, prometheus_service, opensearch_service
    m = mlflow_service
    if not opensearch_answers(settings, 1.0) and running_pid(o.files(settings)) is None:
        o.start(settings)
    if not mlflow_answers(settings, 1.0) and running_pid(m.files(settings)) is None:
        m.start(settings)
    if settings.redis_cluster:
        if not redis_cluster.cluster_ok(settings, 0.5):
            redis_cluster.start(settings)
    else:
        _ensure(
            r.files(settings),
            lambda: redis_answers(settings, 0.5),
            lambda: r.start(settings),
            lambda: r.wait_ready(settings),
        )
    _ensure(
        k.files(settings),
        lambda: kafka_answers(settings, 1.0),
        lambda: k.start(settings),
        lambda: k.wait_ready(settings),
    )
    _ensure(
        n.files(settings),
        lambda: neo4j_answers(settings, 2.0),
        lambda: n.start(settings),
        lambda: n.wait_ready(settings),
    )
    warm_graph_reads(settings)
    _ensure(
        p.files(settings),
        lambda: p.answers(settings, 0.5),
        lambda: p.start(settings),
        lambda: p.wait_ready(settings),
    )
    _ensure(
        o.files(settings),
        lambda: opensearch_answers(settings, 1.0),
        lambda: o.start(settings),
        lambda: o.wait_ready(settings),
    )
    _ensure(
        m.files(settings),
        lambda: mlflow_answers(settings, 1.0),
        lambda: m.start(settings),
        lambda: m.wait_ready(settings),
    )
    prepare_log_indices(settings)
    rsyslog_service.start(settings)
    return status(settings)


def warm_graph_reads(settings: Settings) -> None:
    """The graph reads sent once (``graph.queries.warm_up``): a Neo4j just started answers
    its first related-products query in seconds, the next ones in milliseconds."""
    from graph.queries import warm_up
    from infra.clients import neo4j_driver

    with neo4j_driver(settings) as driver:
        warm_up(driver, settings)


def prepare_log_indices(settings: Settings) -> None:
    """The log indices' template, and the expired daily indices deleted."""
    from search.client import opensearch_client
    from search.logs import ensure_log_template, prune_log_indices

    with opensearch_client(settings, timeout_s=30.0) as client:
        ensure_log_template(client, settings)
        prune_log_indices(client, settings, datetime.now(UTC).date())


def api_files(settings: Settings) -> ServiceFiles:
    return ServiceFiles(settings.runtime_dir, "api")


def start_api(settings: Settings, timeout_s: float = 120.0) -> int:
    """Start the HTTP API (``tillflow api``) detached and wait for ``/healthz``; return its pid."""
    svc = api_files(settings)
    pid = running_pid(svc)
    if pid is None:
        here = Path.cwd()
        pid = spawn(svc, [sys.executable, "-m", "cli", "api"], {"PYTHONPATH": str(here)}, here)
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
    return _start_detached(flows_files(settings), "the flows", ["flows", "run"])


def scheduler_files(settings: Settings) -> ServiceFiles:
    return ServiceFiles(settings.runtime_dir, "scheduler")


def start_scheduler(settings: Settings) -> int:
    """Start the batch scheduler (``tillflow scheduler``) detached; return its pid (idempotent)."""
    return _start_detached(scheduler_files(settings), "the scheduler", ["scheduler"])


def search_indexer_files(settings: Settings) -> ServiceFiles:
    return ServiceFiles(settings.runtime_dir, "search-indexer")


def start_search_indexer(settings: Settings) -> int:
    """Start the product indexer (``tillflow search index``) detached; return its pid."""
    return _start_detached(
        search_indexer_files(settings), "the search indexer", ["search", "index"]
    )


def _start_detached(svc: ServiceFiles, name: str, command: list[str]) -> int:
    """``python -m cli <command>`` in the background unless it runs; fail if it exits at once."""
    pid = running_pid(svc)
    if pid is None:
        here = Path.cwd()
        pid = spawn(svc, [sys.executable, "-m", "cli", *command], {"PYTHONPATH": str(here)}, here)
    time.sleep(1.0)
    if running_pid(svc) is None:
        raise StackError(f"{name} exited during start-up. Last log lines:\n{log_tail(svc)}")
    return pid


def down(settings: Settings) -> list[str]:
    """Stop what ``up`` and ``demo`` started; return the names of the services stopped."""
    stopped = []
    services = (
        ("flows", flows_files(settings)),
        ("scheduler", scheduler_files(settings)),
        ("search-indexer", search_indexer_files(settings)),
        ("api", api_files(settings)),
        ("prometheus", prometheus_service.files(settings)),
        ("kafka", kafka.files(settings)),
        ("neo4j", neo4j_service.files(settings)),
        ("rsyslog", rsyslog_service.files(settings)),
        ("opensearch", opensearch_service.files(settings)),
        ("mlflow", mlflow_service.files(settings)),
        ("redis", redis_service.files(settings)),
    )
    for name, svc in services:
        if terminate(svc):
            stopped.append(name)
    if redis_cluster.stop(settings.runtime_dir):
        stopped.append("redis-cluster")
    return stopped


def _status(name: str, address: str, svc: ServiceFiles, answers: bool) -> ServiceStatus:
    pid = running_pid(svc)
    state = "running" if pid is not None else ("external" if answers else "stopped")
    return ServiceStatus(name, address, state, pid, str(svc.log_file))


def _redis_status(settings: Settings) -> ServiceStatus:
    """The single Redis, or the cluster's masters (running when all of ours run)."""
    if not settings.redis_cluster:
        answers = redis_answers(settings, 0.5)
        return _status("redis", settings.redis_url, redis_service.files(settings), answers)
    nodes = [redis_cluster.files(p, settings.runtime_dir) for p in redis_cluster.ports(settings)]
    pids = [running_pid(n) for n in nodes]
    ok = redis_cluster.cluster_ok(settings, 0.5)
    ours = all(p is not None for p in pids)
    state = ("running" if ok else "not ready") if ours else ("external" if ok else "stopped")
    return ServiceStatus(
        "redis-cluster",
        redis_cluster.address(settings),
        state,
        pids[0] if ours else None,
        redis_cluster.logs(settings),
    )


def flow_restarts(settings: Settings, timeout_s: float = 0.5) -> int | None:
    """How often the supervisor has restarted the running flow (its first process's
    ``tillflow_flow_restarts``); None when no flow serves metrics."""
    if settings.flow_metrics_port == 0:
        return None
    url = f"http://127.0.0.1:{settings.flow_metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        if family.name == "tillflow_flow_restarts" and family.samples:
            return int(family.samples[0].value)
    return None


def _flows_address(settings: Settings) -> str:
    restarts = flow_restarts(settings)
    running = f"{settings.flow_processes} process(es)"
    return running if restarts is None else f"{running}, {restarts} restart(s)"


def status(settings: Settings) -> list[ServiceStatus]:
    """What runs where."""
    api_address = f"http://{settings.api_host}:{settings.api_port}"
    return [
        _status(
            "kafka", settings.kafka_bootstrap, kafka.files(settings), kafka_answers(settings, 1.0)
        ),
        _redis_status(settings),
        _status(
            "neo4j",
            settings.neo4j_uri,
            neo4j_service.files(settings),
            neo4j_answers(settings, 1.0),
        ),
        _status(
            "opensearch",
            settings.opensearch_url,
            opensearch_service.files(settings),
            opensearch_answers(settings, 1.0),
        ),
        _status(
            "mlflow",
            settings.mlflow_url,
            mlflow_service.files(settings),
            mlflow_answers(settings, 1.0),
        ),
        _status(
            "rsyslog",
            f"{settings.opensearch_url} {settings.log_index_prefix}*",
            rsyslog_service.files(settings),
            False,
        ),
        _status(
            "prometheus",
            prometheus_service.address(settings),
            prometheus_service.files(settings),
            prometheus_service.answers(settings, 0.5),
        ),
        _status("api", api_address, api_files(settings), False),
        _status("flows", _flows_address(settings), flows_files(settings), False),
        _status("scheduler", settings.batch_schedule, scheduler_files(settings), False),
        _status("search-indexer", settings.search_index, search_indexer_files(settings), False),
    ]
