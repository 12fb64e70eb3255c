"""Helpers for tests that run tillflow's own commands as processes: ``tillflow up`` over the
shared services, and the API under uvicorn.

Every wait polls an observed fact (an answer, an exit) with a deadline that only turns a hang
into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from flows.run import TAIL_ENV
from schemas.settings import Settings
from tests.flow_processes import wait_until

ROOT = Path(__file__).resolve().parents[1]
API_START_S = 180.0  # importing the API (onnxruntime, MLflow's client) on two busy cores


def child_env(settings: Settings) -> dict[str, str]:
    """The settings as the ``TILLFLOW_*`` environment of a child process."""
    secrets = {"admin_password", "admin_password_hash", "jwt_secret", "neo4j_password"}
    values = settings.model_dump(mode="json", exclude=secrets)
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        TAIL_ENV: "1",
        **{f"TILLFLOW_{k.upper()}": str(v) for k, v in values.items() if v is not None},
        "TILLFLOW_JWT_SECRET": settings.jwt_secret.get_secret_value(),
        "TILLFLOW_ADMIN_PASSWORD": settings.admin_password.get_secret_value(),
    }


def tillflow_up(settings: Settings, timeout_s: float) -> str:
    """Run ``tillflow up`` for ``settings``: it finds the shared services answering and starts
    only what is this run's own (its Prometheus, its rsyslog). Returns its output; fails
    with it when the command does."""
    up = subprocess.run(
        [sys.executable, "-m", "cli", "up"],
        env=child_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    return up.stdout


def get_json(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return orjson.loads(response.read())


def post_json(url: str, body: Any, headers: dict[str, str]) -> Any:
    data = orjson.dumps(body)
    request = urllib.request.Request(
        url, data=data, headers={"content-type": "application/json", **headers}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return orjson.loads(response.read())


def start_api(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """``tillflow api`` on ``settings.api_port``, its output in ``log``; returns once it
    answers ``/healthz``."""
    with log.open("wb") as out:
        api = subprocess.Popen(
            [sys.executable, "-m", "cli", "api", "--port", str(settings.api_port)],
            env=child_env(settings),
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{settings.api_port}/healthz"

    def answering() -> bool:
        try:
            get_json(url, timeout=1)
            return True
        except OSError:
            if api.poll() is not None:
                raise AssertionError("the API exited") from None
            return False

    try:
        wait_until(answering, "the API to answer /healthz", API_START_S)
    except AssertionError as failed:
        api.kill()
        raise AssertionError(f"{failed}; its log:\n{log.read_text()[-3000:]}") from None
    return api
