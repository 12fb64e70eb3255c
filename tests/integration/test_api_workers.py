"""The API launcher with several worker processes, under uvicorn and under Granian.

Each worker is a process with its own rate limiter; the launcher tells every worker how many
there are, and each holds its share of the budget, so a client never gets more than the
configured limit however its connections are spread. One keep-alive connection stays on one
worker: exactly that worker's share is granted before 429.
"""

from __future__ import annotations

import http.client
from pathlib import Path

import orjson
import pytest

from infra.readiness import require_redis
from schemas.settings import Settings
from tests.cli_processes import start_api
from tests.flow_processes import free_port

pytestmark = pytest.mark.integration

BURST = 10
WORKERS = 2


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_each_worker_holds_its_share_of_a_clients_rate_limit(
    settings: Settings, tmp_path: Path, server: str
) -> None:
    require_redis(settings)  # the price route reads Redis; Kafka is not needed here
    chosen = settings.model_copy(
        update={
            "api_server": server,
            "api_workers": WORKERS,
            "api_port": free_port(),
            "rate_limit_per_s": 0.001,  # no refill within the test
            "rate_limit_burst": BURST,
        }
    )
    api = start_api(chosen, tmp_path / "api.log")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", chosen.api_port, timeout=30)
        answers = []
        for _ in range(BURST):
            connection.request("GET", "/prices/SKU-not-in-this-run")
            response = connection.getresponse()
            answers.append((response.status, response.read(), response.getheader("retry-after")))
        connection.close()
    finally:
        api.terminate()
        api.wait(60)
    share = BURST // WORKERS
    assert [status for status, _, _ in answers] == [404] * share + [429] * (BURST - share)
    _, refused, retry_after = answers[-1]
    assert retry_after is not None
    assert int(retry_after) > 0
    assert orjson.loads(refused)["detail"] == (
        "rate limit exceeded: at most 0.001 requests/s per client"
    )
