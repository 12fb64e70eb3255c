"""Batch jobs as values: the job names, one finished run, and the scheduler's schedule.

Written by the batch jobs and the scheduler (``batch/``), read by the admin API and the
metrics (``api/``, ``observability/``); the Redis I/O lives in ``batch/runs.py``.

>>> run = JobRun(job="silver", status="ok", started_at="2026-01-05T00:00:00+00:00",
...              duration_s=1.5, rows_in=10, rows_out=9)
>>> JobRun.from_json(run.to_json()) == run
True
>>> check_job("nope")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: unknown job 'nope'; choose one of: silver, gold, ...
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

JOBS: tuple[str, ...] = (
    "silver",
    "gold",
    "features",
    "train",
    "maintain",
    "pipeline",
    "audit",
    "skew",
)
"""Every job ``tillflow batch`` and the scheduler know; ``pipeline`` runs the first four."""

Status = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class JobRun:
    """One finished run of a job. ``skipped``: another process held the job's lock, or the job
    waits for data it does not have yet; ``error`` says which."""

    job: str
    status: Status
    started_at: str  # ISO-8601, UTC
    duration_s: float
    rows_in: int = 0
    rows_out: int = 0
    error: str | None = None
    trigger: str = "manual"  # manual | schedule | drift | request

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> JobRun:
        data: dict[str, Any] = json.loads(raw)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A job on the scheduler's schedule: how often, when it last started, when it runs next.

    ``next_at`` is ``None`` before its first run (it runs at the scheduler's next poll).
    """

    job: str
    every_s: float
    last_at: float | None  # unix seconds
    next_at: float | None


def scheduled_jobs(state: dict[str, str]) -> list[Scheduled]:
    """The schedule the scheduler published in ``keys.scheduler_state`` (``every:<job>`` and
    ``last:<job>`` fields), in job order.

    >>> scheduled_jobs({"every:pipeline": "3600", "last:pipeline": "100", "every:maintain": "60"})
    [Scheduled(job='maintain', every_s=60.0, last_at=None, next_at=None), \
Scheduled(job='pipeline', every_s=3600.0, last_at=100.0, next_at=3700.0)]
    """
    jobs = []
    for job in JOBS:
        every = state.get(f"every:{job}")
        if every is None:
            continue
        last = state.get(f"last:{job}")
        last_at = None if last is None else float(last)
        jobs.append(
            Scheduled(
                job, float(every), last_at, None if last_at is None else last_at + float(every)
            )
        )
    return jobs


def check_job(job: str) -> str:
    """``job`` if it is a known job, else ``ValueError`` naming the known ones."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; choose one of: {', '.join(JOBS)}")
    return job
