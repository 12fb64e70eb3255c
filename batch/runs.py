"""The record of batch job runs in Redis, and requests to run a job now.

The scheduler (and every ``tillflow batch <job>`` command) appends one
:class:`schemas.jobs.JobRun` per run to the list ``keys.job_runs`` (newest first, capped at
:data:`KEEP_RUNS`); the admin API reads them with :func:`latest_runs` and asks for a run with
:func:`request_job`, which the scheduler consumes from the stream ``keys.job_requests``.
"""

from __future__ import annotations

from typing import Any

from infra.clients import SyncRedis
from schemas.jobs import JobRun, check_job
from schemas.keys import RedisKeys

KEEP_RUNS = 1_000


def record_run(client: SyncRedis, keys: RedisKeys, run: JobRun) -> None:
    """Prepend ``run`` to the run list and cap the list."""
    pipe = client.pipeline(transaction=True)
    pipe.lpush(keys.job_runs, run.to_json())
    pipe.ltrim(keys.job_runs, 0, KEEP_RUNS - 1)
    pipe.execute()


def latest_runs(
    client: SyncRedis, keys: RedisKeys, n: int = 50, job: str | None = None
) -> list[JobRun]:
    """The newest ``n`` runs (of ``job`` only, when given), newest first."""
    raw: list[Any] = client.lrange(keys.job_runs, 0, KEEP_RUNS - 1)  # type: ignore[assignment]
    runs = (JobRun.from_json(r) for r in raw)
    return [r for r in runs if job is None or r.job == job][:n]


def request_job(client: SyncRedis, keys: RedisKeys, job: str) -> str:
    """Ask the scheduler to run ``job`` now; returns the request's stream id.

    Raises ``ValueError`` for an unknown job (the API answers 4xx with the message).
    """
    entry = client.xadd(keys.job_requests, {"job": check_job(job)}, maxlen=10_000)
    return entry.decode() if isinstance(entry, bytes) else str(entry)
