"""``tillflow scheduler``, as `make demo` runs it, serves its metrics: each job run it made is
counted on its ``/metrics`` (here a pipeline that waits for data: ``skipped``), beside the
registry and governance figures Prometheus scrapes from it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from schemas.settings import Settings
from tests.flow_processes import flow_env, free_port, metric_values, wait_until

pytestmark = pytest.mark.integration


def test_a_running_scheduler_counts_its_job_runs_on_its_metrics_endpoint(
    stack: Settings, tmp_path: Path
) -> None:
    rid = uuid.uuid4().hex[:6]
    port = free_port()
    settings = stack.model_copy(
        update={
            "redis_prefix": f"{stack.redis_prefix}sched{rid}:",
            "lake_dir": tmp_path / "lake",
            "runtime_dir": tmp_path / "runtime",
            "scheduler_metrics_port": port,
            "scheduler_poll_s": 0.2,
        }
    )
    command = [sys.executable, "-m", "cli", "scheduler", "--schedule", "pipeline=3600"]
    log = (tmp_path / "scheduler.log").open("w")
    process = subprocess.Popen(command, env=flow_env(settings), stdout=log, stderr=log)
    try:
        skipped = wait_until(
            lambda: [v for v in metric_values(port, _runs("pipeline", "skipped")) if v > 0],
            "the scheduler's first pipeline run on its /metrics",
            timeout_s=120,
        )
        assert skipped == [1.0]  # an empty lake: the pipeline waits for data, it does not fail
        assert metric_values(port, _runs("pipeline", "failed")) == [0.0]
        assert metric_values(port, _runs("silver", "ok")) == [0.0]  # every job declared
        assert process.poll() is None  # it keeps running on its schedule
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    assert "Traceback" not in (tmp_path / "scheduler.log").read_text()


def _runs(job: str, outcome: str) -> str:
    """The sample name of one job's runs with one outcome."""
    return f'tillflow_batch_job_runs_total{{batch_job="{job}",outcome="{outcome}"}}'
