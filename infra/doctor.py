"""``tillflow doctor``: is this machine and this stack ready, and if not, what to do.

Each check returns a :class:`Check`: what was looked at, ``ok``/``warn``/``problem``, what was
found, and — for anything not ok — the one thing to do about it. The checks only read: they
start, stop and change nothing.

>>> Check("disk", "warn", "3.1 GB free in .tillflow", "free disk space").line()
'warn     disk: 3.1 GB free in .tillflow — do: free disk space'
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from infra.errors import StackError
from infra.readiness import require_kafka, require_neo4j, require_redis, require_topics
from infra.stack.jvm import MIN_JAVA
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS

Status = Literal["ok", "warn", "problem"]
MIN_FREE_DISK_GB = 5.0
MIN_FREE_MEMORY_GB = 4.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    found: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<8} {self.name}: {self.found}"
        return f"{text} — do: {self.fix}" if self.fix else text


def java() -> Check:
    path = shutil.which("java")
    if path is None:
        return Check(
            "java",
            "problem",
            "no java on PATH",
            f"install Java {MIN_JAVA}+ (`make setup` installs openjdk-17)",
        )
    said = subprocess.run([path, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "([\d.]+)', said)
    version = match.group(1) if match else "unknown"
    major = int(version.split(".")[0]) if match else 0
    if major < MIN_JAVA:
        return Check(
            "java", "problem", f"{path} is Java {version}", f"put Java {MIN_JAVA}+ first on PATH"
        )
    return Check("java", "ok", f"{path} (Java {version})")


def disk(folder: Path) -> Check:
    where = folder if folder.exists() else Path.cwd()
    free = shutil.disk_usage(where).free / 1e9
    status: Status = "ok" if free >= MIN_FREE_DISK_GB else "warn"
    fix = (
        ""
        if status == "ok"
        else f"free disk space (the lake and Kafka want {MIN_FREE_DISK_GB:g}+ GB)"
    )
    return Check("disk", status, f"{free:.1f} GB free in {where}", fix)


def memory(meminfo: Path = Path("/proc/meminfo")) -> Check:
    match = (
        re.search(r"MemAvailable:\s+(\d+) kB", meminfo.read_text()) if meminfo.exists() else None
    )
    if match is None:
        return Check("memory", "warn", "available memory unknown (no /proc/meminfo)")
    free = int(match.group(1)) / 1e6
    status: Status = "ok" if free >= MIN_FREE_MEMORY_GB else "warn"
    fix = "" if status == "ok" else f"close programs: the stack wants {MIN_FREE_MEMORY_GB:g}+ GB"
    return Check("memory", status, f"{free:.1f} GB available", fix)


def _port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def service(
    name: str,
    host: str,
    port: int,
    probe: Callable[[], str],
    start_hint: str = "run `tillflow up`",
) -> Check:
    """``probe`` returns the service's version or raises; the port tells a stopped service from
    a port taken by something else."""
    try:
        version = probe()
    except Exception as exc:  # noqa: BLE001 - any failure of a probe is a finding to report
        if _port_open(host, port):
            return Check(
                name,
                "problem",
                f"{host}:{port} is open but does not answer as {name}: "
                f"{type(exc).__name__}: {str(exc)[:120]}",
                f"free port {port} or point tillflow elsewhere (settings)",
            )
        return Check(name, "problem", f"not running at {host}:{port}", start_hint)
    return Check(name, "ok", f"{host}:{port} answers ({version})")


def _redis_version(settings: Settings) -> str:
    from infra.clients import redis_client

    require_redis(settings, timeout_s=2)
    client = redis_client(settings, timeout_s=2)
    try:
        info: dict[str, Any] = client.info("server")  # type: ignore[assignment]
    finally:
        client.close()
    return f"Redis {info['redis_version']}"


def _kafka_version(settings: Settings) -> str:
    meta = require_kafka(settings, timeout_s=3)
    return f"Kafka, {len(meta.brokers)} broker(s)"


def _neo4j_version(settings: Settings) -> str:
    from infra.clients import neo4j_driver

    require_neo4j(settings, timeout_s=3)
    with neo4j_driver(settings) as driver:
        records, _, _ = driver.execute_query("CALL dbms.components() YIELD name, versions")
    return " ".join(f"{r['name']} {r['versions'][0]}" for r in records)


def _prometheus_version(settings: Settings) -> str:
    url = f"http://127.0.0.1:{settings.prometheus_port}/api/v1/status/buildinfo"
    with urllib.request.urlopen(url, timeout=2) as answer:
        return f"Prometheus {json.loads(answer.read())['data']['version']}"


def _mlflow_version(settings: Settings) -> str:
    url = f"{settings.mlflow_url.rstrip('/')}/version"
    with urllib.request.urlopen(url, timeout=2) as answer:
        return f"MLflow {answer.read().decode().strip()}"


def _api_version(settings: Settings) -> str:
    url = f"http://{settings.api_host}:{settings.api_port}/healthz"
    with urllib.request.urlopen(url, timeout=2) as answer:
        return f"HTTP {answer.status}"


def services(settings: Settings) -> list[Check]:
    redis_url = urlsplit(settings.redis_url)
    bolt = urlsplit(settings.neo4j_uri)
    kafka_host, _, kafka_port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    return [
        service(
            "redis",
            redis_url.hostname or "127.0.0.1",
            redis_url.port or 6379,
            lambda: _redis_version(settings),
        ),
        service(
            "kafka", kafka_host or "127.0.0.1", int(kafka_port), lambda: _kafka_version(settings)
        ),
        service(
            "neo4j",
            bolt.hostname or "127.0.0.1",
            bolt.port or 7687,
            lambda: _neo4j_version(settings),
        ),
        service(
            "prometheus",
            "127.0.0.1",
            settings.prometheus_port,
            lambda: _prometheus_version(settings),
        ),
        service(
            "mlflow",
            urlsplit(settings.mlflow_url).hostname or "127.0.0.1",
            urlsplit(settings.mlflow_url).port or 5000,
            lambda: _mlflow_version(settings),
        ),
        service(
            "api",
            settings.api_host,
            settings.api_port,
            lambda: _api_version(settings),
            "run `make demo` (or `tillflow api`)",
        ),
    ]


def topics(settings: Settings) -> Check:
    names = [settings.topic(t) for t in ALL_TOPICS]
    try:
        require_topics(settings, names, timeout_s=3)
    except StackError as exc:
        return Check("topics", "problem", str(exc)[:200], "run `tillflow topics create`")
    return Check("topics", "ok", f"{len(names)} topics ({', '.join(names)})")


def catalogue(settings: Settings) -> Check:
    from flows.catalogue import load_catalogue

    try:
        count = len(load_catalogue(settings))
    except Exception as exc:  # noqa: BLE001 - Redis down is reported by the services check
        return Check("catalogue", "problem", f"unreadable: {type(exc).__name__}", "start Redis")
    if count == 0:
        return Check(
            "catalogue",
            "problem",
            "no products",
            "load them: `tillflow catalogue load FILE.jsonl` (or run `make demo`)",
        )
    return Check("catalogue", "ok", f"{count:,} products")


def models(settings: Settings) -> Check:
    from registry import ModelRegistry, RegistryError

    registry = ModelRegistry.from_settings(settings)
    try:
        current = {name: registry.current(name) for name in ("demand", "ranker")}
    except RegistryError as exc:
        return Check("models", "problem", str(exc), "run `tillflow up` (MLflow holds the models)")
    missing = [name for name, v in current.items() if v is None]
    found = ", ".join(v.label for v in current.values() if v is not None) or "none"
    if missing:
        return Check(
            "models",
            "warn",
            f"current: {found}; missing: {', '.join(missing)}",
            "train them: `tillflow batch pipeline` (needs 3 days of events)",
        )
    return Check("models", "ok", f"current: {found}")


def examine(settings: Settings) -> list[Check]:
    """Every check, machine first, then the services and what they hold."""
    found = [java(), disk(settings.runtime_dir), memory(), *services(settings)]
    reachable = {c.name for c in found if c.status == "ok"}
    if "kafka" in reachable:
        found.append(topics(settings))
    if "redis" in reachable:
        found.append(catalogue(settings))
    found.append(models(settings))
    return found
