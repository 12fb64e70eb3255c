"""Metrics of batch jobs and of the model registry, for the scheduler to expose.

The job's name is the label ``batch_job`` (``job`` is Prometheus' own target label).

==========================================  =========  ======================  ===================
name                                        type       labels                  meaning
==========================================  =========  ======================  ===================
``tillflow_batch_job_duration_seconds``     histogram  ``batch_job``           wall time of a run
``tillflow_batch_job_runs_total``           counter    ``batch_job``,          runs by ``success``
                                                       ``outcome``             or ``failure``
``tillflow_batch_rows_total``               counter    ``batch_job``,          rows ``read`` or
                                                       ``direction``           ``written``
``tillflow_batch_job_last_success``         gauge      ``batch_job``           unix time of the
``_timestamp_seconds``                                                         last success
``tillflow_registry_model_version``         gauge      ``model``               current version
==========================================  =========  ======================  ===================

A job is wrapped in :meth:`JobMetrics.track`:

>>> from prometheus_client import CollectorRegistry
>>> metrics = JobMetrics(CollectorRegistry())
>>> with metrics.track("silver") as run:
...     run.rows("read", 120)
...     run.rows("written", 100)
>>> metrics.value("tillflow_batch_job_runs_total", batch_job="silver", outcome="success")
1.0
>>> metrics.value("tillflow_batch_rows_total", batch_job="silver", direction="written")
100.0
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from registry.store import ModelRegistry

JOB_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
Outcome = Literal["success", "failure"]
Direction = Literal["read", "written"]


class JobRun:
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
            "tillflow_batch_job_duration_seconds", "Wall time of batch job runs.",
            ["batch_job"], buckets=JOB_BUCKETS, registry=registry,
        )  # fmt: skip
        self.runs_total = Counter(
            "tillflow_batch_job_runs", "Batch job runs by outcome.", ["batch_job", "outcome"],
            registry=registry,
        )  # fmt: skip
        self.rows_total = Counter(
            "tillflow_batch_rows", "Rows batch jobs read or wrote.", ["batch_job", "direction"],
            registry=registry,
        )  # fmt: skip
        self.last_success = Gauge(
            "tillflow_batch_job_last_success_timestamp_seconds",
            "Unix time of each job's last successful run.", ["batch_job"], registry=registry,
        )  # fmt: skip

    def declare(self, jobs: Iterable[str]) -> None:
        """Create every job's series at zero, so dashboards and alerts see them before a run."""
        for job in jobs:
            self.duration.labels(batch_job=job)
            for outcome in ("success", "failure"):
                self.runs_total.labels(batch_job=job, outcome=outcome)
            for direction in ("read", "written"):
                self.rows_total.labels(batch_job=job, direction=direction)

    @contextmanager
    def track(self, job: str) -> Iterator[JobRun]:
        """Time the block and count its outcome (an exception is a failure, and re-raised)."""
        self.declare([job])
        start = time.perf_counter()
        outcome: Outcome = "failure"
        try:
            yield JobRun(self, job)
            outcome = "success"
        finally:
            self.duration.labels(batch_job=job).observe(time.perf_counter() - start)
            self.runs_total.labels(batch_job=job, outcome=outcome).inc()
            if outcome == "success":
                self.last_success.labels(batch_job=job).set(time.time())

    def value(self, name: str, **labels: str) -> float | None:
        """The current value of one sample (for tests and the CLI)."""
        return self.registry.get_sample_value(name, labels)


class RegistryCollector(Collector):
    """``tillflow_registry_model_version{model}``: read from the registry at every scrape."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.models = registry

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "tillflow_registry_model_version",
            "Version of each model that the registry's current pointer names.",
            labels=["model"],
        )
        for name in self.models.names():
            current = self.models.current(name)
            if current is not None:
                family.add_metric([name], float(current.version))
        yield family
