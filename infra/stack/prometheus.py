"""Prometheus from Debian's ``prometheus`` package, on 127.0.0.1, scraping every tillflow process.

The configuration is generated from the settings (:func:`config`); the alert rules are the
files in ``infra/prometheus/rules/``. ``infra/prometheus/prometheus.yml`` (Docker Compose)
is the same configuration for the compose service names.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from infra.stack.processes import (
    ServiceFiles,
    debian_binary,
    running_pid,
    spawn,
    wait_until_ready,
)
from schemas.settings import Settings

JOBS = ("tillflow-api", "tillflow-flows", "tillflow-scheduler")


def rules_dir() -> Path:
    return Path(str(resources.files("infra").joinpath("prometheus", "rules")))


@dataclass(frozen=True, slots=True)
class Targets:
    """Where each kind of tillflow process serves ``/metrics`` (``host:port`` strings)."""

    api: tuple[str, ...]
    flows: tuple[str, ...]
    scheduler: tuple[str, ...]
    alertmanagers: tuple[str, ...] = ()

    @classmethod
    def local(cls, settings: Settings) -> Targets:
        """The processes the local launcher runs, from the settings."""
        host = settings.metrics_host
        flows = tuple(
            f"{host}:{settings.flow_metrics_port + i}" for i in range(settings.flow_processes)
        )
        am = settings.alertmanager_url.removeprefix("http://").rstrip("/")
        return cls(
            api=(f"{settings.api_host}:{settings.api_port}",),
            flows=flows if settings.flow_metrics_port else (),
            scheduler=(f"{host}:{settings.scheduler_metrics_port}",),
            alertmanagers=(am,) if am else (),
        )


def config(targets: Targets, scrape_interval_s: int, rules: str) -> dict[str, Any]:
    """The Prometheus configuration: one scrape job per kind of tillflow process.

    >>> c = config(Targets(("api:8000",), ("flows:9101",), ("scheduler:9100",)), 15, "/r")
    >>> [job["job_name"] for job in c["scrape_configs"]]
    ['prometheus', 'tillflow-api', 'tillflow-flows', 'tillflow-scheduler']
    >>> c["rule_files"]
    ['/r/*.yml']
    """
    interval = f"{scrape_interval_s}s"
    jobs: dict[str, tuple[str, ...]] = {
        "tillflow-api": targets.api,
        "tillflow-flows": targets.flows,
        "tillflow-scheduler": targets.scheduler,
    }
    scrape: list[dict[str, Any]] = [
        {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]}
    ]
    scrape += [
        {"job_name": job, "static_configs": [{"targets": list(hosts)}]}
        for job, hosts in jobs.items()
        if hosts
    ]
    out: dict[str, Any] = {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "external_labels": {"system": "tillflow"},
        },
        "rule_files": [f"{rules}/*.yml"],
        "scrape_configs": scrape,
    }
    if targets.alertmanagers:
        out["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": list(targets.alertmanagers)}]}]
        }
    return out


def files(settings: Settings) -> ServiceFiles:
    return ServiceFiles(settings.runtime_dir, "prometheus")


def address(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.prometheus_port}"


def answers(settings: Settings, timeout_s: float) -> bool:
    """Whether a Prometheus answers ``/-/ready`` on the configured port (never raises)."""
    try:
        with urllib.request.urlopen(f"{address(settings)}/-/ready", timeout=timeout_s) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def write_config(settings: Settings) -> Path:
    """Write the generated configuration under the runtime folder; return its path."""
    svc = files(settings)
    svc.prepare()
    path = svc.data_dir / "prometheus.yml"
    body = config(
        Targets.local(settings), settings.prometheus_scrape_interval_s, str(rules_dir().resolve())
    )
    body["scrape_configs"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{settings.prometheus_port}"
    ]
    path.write_text(json.dumps(body, indent=2))  # JSON is YAML: no YAML writer needed
    return path


def start(settings: Settings) -> int:
    """Start Prometheus unless it already runs; return its pid."""
    svc = files(settings)
    pid = running_pid(svc)
    if pid is not None:
        return pid
    binary = debian_binary("prometheus", "prometheus")
    path = write_config(settings)
    return spawn(
        svc,
        [
            binary,
            f"--config.file={path.resolve()}",
            f"--storage.tsdb.path={(svc.data_dir / 'tsdb').resolve()}",
            f"--storage.tsdb.retention.time={settings.prometheus_retention}",
            f"--web.listen-address=127.0.0.1:{settings.prometheus_port}",
            "--web.enable-lifecycle",
        ],
    )


def wait_ready(settings: Settings, timeout_s: float = 30.0) -> None:
    """Block until Prometheus answers ``/-/ready``; raise with its log tail if it does not."""
    wait_until_ready(
        files(settings),
        "Prometheus",
        address(settings),
        lambda: answers(settings, 1.0),
        timeout_s,
        poll_s=0.2,
    )
