"""``tillflow scheduler``: run the batch jobs on a schedule, on drift and on request.

Every ``TILLFLOW_SCHEDULER_POLL_S`` seconds the scheduler:

- reads new drift detections the flows appended to ``keys.drift_events`` → runs ``train``;
- reads new requests from ``keys.job_requests`` (``batch.runs.request_job``) → runs them;
- runs each job of ``TILLFLOW_BATCH_SCHEDULE`` (``job=seconds,…``) whose interval has passed.

With a :class:`flows.rebuild.RedisGuard` (``tillflow scheduler`` gives it one), a thread also
checks every ``TILLFLOW_REDIS_CHECK_S`` seconds that Redis still holds its data, and rebuilds
the serving state when it does not.

Its cursors (the last drift and request ids handled, each job's last start) and its schedule
(``every:<job>``, read by the admin page to say when a job runs next) live in the hash
``keys.scheduler_state``, so a restarted scheduler neither repeats nor misses work; a cursor
moves on once the run it caused has finished. Job locks (batch/locks.py) keep two schedulers,
or a scheduler and a manual ``tillflow batch`` run, from running one job twice at once.

>>> parse_schedule("pipeline=3600, maintain=86400")
{'pipeline': 3600.0, 'maintain': 86400.0}
>>> parse_schedule("retrain=5")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: unknown job 'retrain'; choose one of: silver, gold, features, train, maintain, ...
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import redis
import structlog

from batch.jobs import JobOptions, run_job
from batch.result import StepResult
from flows.rebuild import RedisGuard
from infra.clients import SyncRedis, redis_client
from schemas.jobs import JOBS, JobRun, check_job
from schemas.settings import Settings

log = structlog.get_logger(__name__)

Runner = Callable[..., tuple[JobRun, StepResult | None]]
DRIFT_CURSOR, REQUEST_CURSOR = "cursor:drift", "cursor:requests"


def parse_schedule(text: str) -> dict[str, float]:
    """``"job=seconds,…"`` → {job: seconds}; an empty text schedules nothing."""
    schedule: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        job, sep, seconds = part.partition("=")
        if not sep:
            raise ValueError(f"schedule entry {part!r} is not job=seconds")
        every = float(seconds)
        if every <= 0:
            raise ValueError(f"schedule entry {part!r}: seconds must be positive")
        schedule[check_job(job.strip())] = every
    return schedule


class Scheduler:
    """Decides what to run and runs it; :meth:`tick` once, :meth:`run` in a loop."""

    def __init__(
        self,
        settings: Settings,
        schedule: dict[str, float],
        *,
        options: JobOptions | None = None,
        runner: Runner = run_job,
        clock: Callable[[], float] = time.time,
        guard: RedisGuard | None = None,
    ) -> None:
        settings.require_safe_secrets()  # it triggers the jobs the admin API asks for
        self.settings = settings
        self.guard = guard
        self.keys = settings.keys
        self.schedule = schedule
        self.options = options or JobOptions()
        self.runner = runner
        self.clock = clock
        self.redis: SyncRedis = redis_client(settings, decode_responses=True)
        self.redis_failures = 0  # ticks that Redis did not answer (the loop waits and retries)

    def close(self) -> None:
        self.redis.close()

    def _new_entries(self, stream: str, cursor: str) -> list[tuple[str, dict[str, str]]]:
        last = self.redis.hget(self.keys.scheduler_state, cursor) or "0-0"
        entries: Any = self.redis.xrange(stream, min=f"({last}", max="+", count=1_000)
        return list(entries)

    def pending(self) -> list[tuple[str, str, dict[str, str]]]:
        """``(job, trigger, cursor updates)`` to run now, in order, each job once."""
        todo: list[tuple[str, str, dict[str, str]]] = []
        drift = self._new_entries(self.keys.drift_events, DRIFT_CURSOR)
        if drift:
            todo.append(("train", "drift", {DRIFT_CURSOR: drift[-1][0]}))
        for entry_id, fields in self._new_entries(self.keys.job_requests, REQUEST_CURSOR):
            job = fields.get("job", "")
            if job not in JOBS:
                log.warning("scheduler.bad_request", id=entry_id, job=job)
                job = ""
            todo.append((job, "request", {REQUEST_CURSOR: entry_id}))
        now = self.clock()
        for job, every in self.schedule.items():
            last: Any = self.redis.hget(self.keys.scheduler_state, f"last:{job}")
            if last is None or now - float(last) >= every:
                todo.append((job, "schedule", {}))
        merged: dict[str, tuple[str, str, dict[str, str]]] = {}
        skipped: dict[str, str] = {}
        for job, trigger, cursors in todo:
            if not job:
                skipped.update(cursors)
            elif job in merged:  # one run serves every reason to run it
                merged[job][2].update(cursors)
            else:
                merged[job] = (job, trigger, dict(cursors))
        if skipped:
            self.redis.hset(self.keys.scheduler_state, mapping=skipped)
        return list(merged.values())

    def tick(self) -> list[JobRun]:
        """Run whatever is due now; returns the runs."""
        runs = []
        for job, trigger, cursors in self.pending():
            self.redis.hset(self.keys.scheduler_state, f"last:{job}", str(self.clock()))
            log.info("scheduler.run", job=job, trigger=trigger)
            run, _ = self.runner(self.settings, job, trigger=trigger, options=self.options)
            if cursors:
                self.redis.hset(self.keys.scheduler_state, mapping=cursors)
            runs.append(run)
        return runs

    def publish_schedule(self) -> None:
        """Write ``every:<job>`` for each scheduled job (and drop the others), so that the admin
        page can say when each job runs next."""
        state: dict[str, str] = self.redis.hgetall(self.keys.scheduler_state)  # type: ignore[assignment]
        stale = [f for f in state if f.startswith("every:") and f[6:] not in self.schedule]
        pipe = self.redis.pipeline(transaction=True)
        if stale:
            pipe.hdel(self.keys.scheduler_state, *stale)
        if self.schedule:
            every = {f"every:{job}": str(s) for job, s in self.schedule.items()}
            pipe.hset(self.keys.scheduler_state, mapping=every)
        pipe.execute()

    def run(self, stop: threading.Event | None = None, ticks: int | None = None) -> int:
        """Tick every ``TILLFLOW_SCHEDULER_POLL_S`` until ``stop`` is set (or ``ticks`` ran)."""
        stop = stop or threading.Event()
        if self.guard is not None:  # rebuilds a Redis that lost its data, between jobs too
            self.guard.start(stop)
        done = 0
        log.info("scheduler.started", schedule=self.schedule, poll_s=self.settings.scheduler_poll_s)
        failures_in_a_row = 0
        while not stop.is_set() and (ticks is None or done < ticks):
            try:
                if done == 0:
                    self.publish_schedule()  # inside the outage handling: Redis may be away
                self.tick()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # Redis holds the cursors and the job locks: without it, wait and try again.
                self.redis_failures += 1
                failures_in_a_row += 1
                wait = outage_wait(self.settings.scheduler_poll_s, failures_in_a_row)
                log.warning(
                    "scheduler.redis_unavailable",
                    error=repr(exc),
                    retry_in_s=wait,
                    failures=failures_in_a_row,
                )
                stop.wait(wait)
                continue
            failures_in_a_row = 0
            done += 1
            if ticks is None or done < ticks:
                stop.wait(self.settings.scheduler_poll_s)
        return done


def outage_wait(poll_s: float, failures_in_a_row: int, cap_s: float = 60.0) -> float:
    """How long the scheduler waits after Redis failed ``failures_in_a_row`` times.

    >>> [outage_wait(1.0, n) for n in (1, 2, 3, 8)]
    [1.0, 2.0, 4.0, 60.0]
    """
    return float(min(cap_s, poll_s * 2 ** min(failures_in_a_row - 1, 16)))
