"""While Kafka is down, ``POST /events`` answers 503 within its timeout (all 50 concurrent
requests, each within 1 s) and ``/readyz`` says so; when the broker is back the API accepts
events again by itself. The broker is this test's own, killed with SIGKILL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest

from infra.stack.topics import ensure_topics
from schemas.settings import Settings
from tests.credentials import admin_headers, producer_headers
from tests.flow_processes import flow_env, free_port, wait_until
from tests.own_kafka import DETACHED, own_kafka
from tests.unit.test_schemas import VALID

pytestmark = [pytest.mark.integration, DETACHED]

CONCURRENT = 50
CLIENT_TIMEOUT_S = 1.0  # what each request must be answered within


def _activity() -> dict[str, object]:
    return {**VALID["user-activity"], "event_id": str(uuid.uuid4())}


async def _post_all(
    url: str, kill: Callable[[], None], auth: dict[str, str]
) -> list[httpx.Response]:
    """Open CONCURRENT connections while all is well, ``kill``, then post on all at once.

    The connections are opened first so that the 1 s each request has measures the API's
    answer, not how fast a busy machine accepts 50 new TCP connections.
    """
    limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(client.get(f"{url}/healthz") for _ in range(CONCURRENT)))
        await asyncio.to_thread(kill)
        posts = [
            client.post(
                f"{url}/events/user-activity",
                json=_activity(),
                headers=auth,
                timeout=CLIENT_TIMEOUT_S,
            )
            for _ in range(CONCURRENT)
        ]
        return await asyncio.gather(*posts)


def _post_one(url: str, auth: dict[str, str]) -> int:
    try:
        answer = httpx.post(
            f"{url}/events/user-activity", json=_activity(), headers=auth, timeout=5
        )
        return answer.status_code
    except httpx.HTTPError:
        return 0


def test_kafka_down_answers_503_at_once_and_the_api_recovers_by_itself(
    stack: Settings, tmp_path: Path
) -> None:
    with own_kafka(stack, tmp_path / "kafka") as broker:
        port = free_port()
        settings = broker.settings.model_copy(
            update={
                "topic_prefix": f"{stack.topic_prefix}kdown{uuid.uuid4().hex[:6]}.",
                "api_port": port,
                "api_kafka_timeout_s": 0.3,
                "rate_limit_per_s": 0.0,
            }
        )
        ensure_topics(settings)
        url = f"http://127.0.0.1:{port}"
        auth, admin = producer_headers(settings), admin_headers(settings)
        log = (tmp_path / "api.log").open("wb")
        api = subprocess.Popen(
            [sys.executable, "-m", "cli", "api"],
            env=flow_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            assert wait_until(lambda: _post_one(url, auth) == 202, "the API to accept an event")

            answers = asyncio.run(_post_all(url, broker.kill, auth))  # over 1 s: ReadTimeout
            assert [r.status_code for r in answers] == [503] * CONCURRENT
            assert all("Kafka" in r.text for r in answers)
            ready = httpx.get(f"{url}/readyz", headers=admin, timeout=CLIENT_TIMEOUT_S)
            assert ready.status_code == 503
            assert "Kafka" in ready.json()["checks"]["kafka"]

            broker.start()
            assert wait_until(lambda: _post_one(url, auth) == 202, "the API to accept events again")
            checks = httpx.get(f"{url}/readyz", headers=admin, timeout=5).json()["checks"]
            assert checks["kafka"] == "ok"
        finally:
            api.terminate()
            try:
                api.wait(timeout=60)
            except subprocess.TimeoutExpired:
                api.kill()
                raise
            log.close()
