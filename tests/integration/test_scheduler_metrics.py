"""``tillflow scheduler``, as `make demo` runs it, serves its metrics: each job run it made is
counted on its ``/metrics`` (here a pipeline that waits for data: ``skipped``), beside the
registry and governance figures Prometheus scrapes from it."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from schemas.settings import Settings
from tests.flow_processes import flow_env, free_port, wait_until

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
            lambda: _sample(port, 'batch_job="pipeline",outcome="skipped"'),
            "the scheduler's first pipeline run on its /metrics",
            timeout_s=120,
        )
        assert skipped == 1.0  # an empty lake: the pipeline waits for data, it does not fail
        assert _sample(port, 'batch_job="pipeline",outcome="failed"') == 0.0
        assert _sample(port, 'batch_job="silver",outcome="ok"') == 0.0  # every job declared
        assert process.poll() is None  # it keeps running on its schedule
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    assert "Traceback" not in (tmp_path / "scheduler.log").read_text()


def _sample(port: int, labels: str) -> float | None:
    """The value of ``tillflow_batch_job_runs_total{<labels>}``, if served yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"tillflow_batch_job_runs_total{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None
