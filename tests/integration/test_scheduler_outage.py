"""The batch scheduler waits out a Redis outage (blackholed: no answer, no error) and runs
its jobs again when Redis is back, without being restarted."""

from __future__ import annotations

import threading
import uuid
from urllib.parse import urlparse

import pytest

from batch.runs import JobRun
from batch.scheduler import Scheduler
from schemas.settings import Settings
from tests.flow_processes import wait_until
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


def test_the_scheduler_waits_out_a_redis_outage_and_runs_again(stack: Settings) -> None:
    real = urlparse(stack.redis_url)
    proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 6379)
    settings = stack.model_copy(
        update={
            "redis_url": f"redis://127.0.0.1:{proxy.port}{real.path or '/0'}",
            "redis_prefix": f"{stack.redis_prefix}sched{uuid.uuid4().hex[:6]}:",
            "redis_timeout_s": 0.5,
            "scheduler_poll_s": 0.05,
        }
    )
    ran: list[str] = []

    def runner(_s: Settings, job: str, **_kw: object) -> tuple[JobRun, None]:
        """Records the job instead of running it: this test is about the loop, not the jobs."""
        ran.append(job)
        return JobRun(job, "ok", "2026-01-01T00:00:00+00:00", 0.0), None

    proxy.blackhole()
    scheduler = Scheduler(settings, {"silver": 0.0}, runner=runner)
    stop = threading.Event()
    loop = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    loop.start()
    try:
        wait_until(lambda: scheduler.redis_failures >= 2, "the scheduler to meet the outage")
        assert loop.is_alive()
        assert ran == []
        proxy.restore()
        wait_until(lambda: ran, "a job to run after the outage")
        assert loop.is_alive()
    finally:
        stop.set()
        proxy.restore()
        loop.join(timeout=30)
        scheduler.close()
        proxy.close()
