"""``tillflow doctor`` on the running stack, and on one with a service missing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from infra.doctor import Check, examine, memory
from schemas.settings import Settings

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_a_healthy_stack_passes_every_service_check(stack: Settings) -> None:
    checks = _by_name(examine(stack))
    for name in ("java", "redis", "kafka", "neo4j", "mlflow", "prometheus", "topics"):
        assert checks[name].status == "ok", checks[name]
    assert "Redis" in checks["redis"].found
    assert "Neo4j" in checks["neo4j"].found or "neo4j" in checks["neo4j"].found.lower()
    assert "Prometheus" in checks["prometheus"].found
    assert "MLflow 3.17" in checks["mlflow"].found


def test_a_stopped_service_is_a_problem_with_what_to_do(stack: Settings) -> None:
    broken = stack.model_copy(update={"redis_url": f"redis://127.0.0.1:{_closed_port()}/0"})
    checks = _by_name(examine(broken))
    assert checks["redis"].status == "problem"
    assert "not running" in checks["redis"].found
    assert "tillflow up" in checks["redis"].fix
    assert "catalogue" not in checks  # nothing to read it from
    assert checks["kafka"].status == "ok"


def test_a_port_taken_by_another_program_is_told_apart(stack: Settings) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broken = stack.model_copy(update={"prometheus_port": port})
        check = _by_name(examine(broken))["prometheus"]
    assert check.status == "problem"
    assert f"{port} is open but does not answer as prometheus" in check.found
    assert f"free port {port}" in check.fix


def test_the_command_exits_1_on_a_problem(stack: Settings) -> None:
    """The real command, in its own process (it configures logging for the whole process)."""
    env = {
        **os.environ,
        "TILLFLOW_REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0",
        "TILLFLOW_TOPIC_PREFIX": stack.topic_prefix,
    }
    result = subprocess.run(
        [sys.executable, "-m", "cli", "doctor"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "redis" in result.stdout
    assert "problem(s)" in result.stdout


def test_little_memory_is_a_warning(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 8000000 kB\nMemAvailable:  1500000 kB\n")
    check = memory(meminfo)
    assert (check.status, check.found) == ("warn", "1.5 GB available")
