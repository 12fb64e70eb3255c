"""Metrics of batch jobs and of the model registry, for the scheduler to expose.

The job's name is the label ``batch_job`` (``job`` is Prometheus' own target label).

- ``tillflow_batch_job_duration_seconds{batch_job}`` (histogram): wall time of each run;
- ``tillflow_batch_job_runs_total{batch_job, outcome}``: runs by ``ok``, ``failed``, ``skipped``;
- ``tillflow_batch_rows_total{batch_job, direction}``: rows ``read`` and ``written``;
- ``tillflow_batch_job_last_success_timestamp_seconds{batch_job}``: unix time of the last ``ok``;
- ``tillflow_registry_model_version{model}``: the version the ``champion`` alias names.

A finished run (``schemas.jobs.JobRun``) is recorded with :meth:`JobMetrics.record`, or a block
of code is wrapped in :meth:`JobMetrics.track`:

>>> from prometheus_client import CollectorRegistry
>>> metrics = JobMetrics(CollectorRegistry())
>>> with metrics.track("silver") as run:
...     run.rows("read", 120)
...     run.rows("written", 100)
>>> metrics.value("tillflow_batch_job_runs_total", batch_job="silver", outcome="ok")
1.0
>>> metrics.value("tillflow_batch_rows_total", batch_job="silver", direction="written")
100.0
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from observability.exposition import MetricsServer, serve_metrics
from registry import ModelRegistry, RegistryError
from schemas.jobs import JOBS, JobRun
from schemas.settings import Settings

log = structlog.get_logger(__name__)

JOB_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
OUTCOMES = ("ok", "failed", "skipped")  # schemas.jobs.Status
Direction = Literal["read", "written"]


class RunningJob:
    """What one run of a job reports while it runs."""

    def __init__(self, metrics: JobMetrics, job: str) -> None:
        self._metrics = metrics
        self.job = job

    def rows(self, direction: Direction, count: int) -> None:
        """Count ``count`` rows read or written."""
        self._metrics.rows_total.labels(batch_job=self.job, direction=direction).inc(count)


class JobMetrics:
    """The batch metrics in one registry (the process's default one in production)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.duration = Histogram(
            "tillflow_batch_job_duration_seconds",
            "Wall time of batch job runs.",
            ["batch_job"],
            buckets=JOB_BUCKETS,
            registry=registry,
        )
        self.runs_total = Counter(
            "tillflow_batch_job_runs",
            "Batch job runs by outcome.",
            ["batch_job", "outcome"],
            registry=registry,
        )
        self.rows_total = Counter(
            "tillflow_batch_rows",
            "Rows batch jobs read or wrote.",
            ["batch_job", "direction"],
            registry=registry,
        )
        self.last_success = Gauge(
            "tillflow_batch_job_last_success_timestamp_seconds",
            "Unix time of each job's last successful run.",
            ["batch_job"],
            registry=registry,
        )

    def declare(self, jobs: Iterable[str]) -> None:
        """Create every job's series at zero, so dashboards and alerts see them before a run."""
        for job in jobs:
            self.duration.labels(batch_job=job)
            for outcome in OUTCOMES:
                self.runs_total.labels(batch_job=job, outcome=outcome)
            for direction in ("read", "written"):
                self.rows_total.labels(batch_job=job, direction=direction)

    @contextmanager
    def track(self, job: str) -> Iterator[RunningJob]:
        """Time the block and count its outcome (an exception is ``failed``, and re-raised)."""
        self.declare([job])
        start = time.perf_counter()
        outcome = "failed"
        try:
            yield RunningJob(self, job)
            outcome = "ok"
        finally:
            self._finished(job, outcome, time.perf_counter() - start)

    def record(self, run: JobRun) -> None:
        """Count a run the scheduler or ``tillflow batch`` already finished and timed."""
        self.declare([run.job])
        self.rows_total.labels(batch_job=run.job, direction="read").inc(run.rows_in)
        self.rows_total.labels(batch_job=run.job, direction="written").inc(run.rows_out)
        self._finished(run.job, run.status, run.duration_s)

    def _finished(self, job: str, outcome: str, seconds: float) -> None:
        self.duration.labels(batch_job=job).observe(seconds)
        self.runs_total.labels(batch_job=job, outcome=outcome).inc()
        if outcome == "ok":
            self.last_success.labels(batch_job=job).set(time.time())

    def value(self, name: str, **labels: str) -> float | None:
        """The current value of one sample (for tests and the CLI)."""
        return self.registry.get_sample_value(name, labels)


class RegistryCollector(Collector):
    """``tillflow_registry_model_version{model}``: the ``champion`` alias of each model in
    MLflow's registry, read at every scrape."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.models = registry

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "tillflow_registry_model_version",
            "Version of each model that the registry's current pointer names.",
            labels=["model"],
        )
        try:
            for name in self.models.names():
                current = self.models.current(name)
                if current is not None:
                    family.add_metric([name], float(current.version))
        except RegistryError as exc:  # MLflow away: no sample rather than a failed scrape
            log.warning("registry.unreadable", error=str(exc))
        yield family


def start_scheduler_metrics(
    settings: Settings, registry: CollectorRegistry = REGISTRY
) -> tuple[JobMetrics, MetricsServer | None]:
    """For the scheduler, once per process: job metrics with every job declared, the model
    registry gauge, the latest audit and skew figures (observability/governance.py), and
    ``/metrics`` on ``TILLFLOW_SCHEDULER_METRICS_PORT`` (0: not served)."""
    from infra.clients import redis_client
    from observability.governance import GovernanceCollector

    jobs = JobMetrics(registry)
    jobs.declare(JOBS)
    registry.register(RegistryCollector(ModelRegistry.from_settings(settings)))
    registry.register(GovernanceCollector(redis_client(settings), settings.keys))
    if settings.scheduler_metrics_port == 0:
        return jobs, None
    server = serve_metrics(settings.metrics_host, settings.scheduler_metrics_port, registry)
    return jobs, server
