"""Riding out an outage inside a sink: retry the whole write, with bounded backoff, forever.

A write that does not return holds its epoch open: the sink's snapshot at the epoch's end
waits for it (flows/sinks/overlap.py), so Bytewax commits no epoch past output that was not
written, and a flow blocked here and killed later resumes from before the unwritten items.
Every serving write sets absolute values (or is an at-least-once counter), so repeating a
batch after an error is safe.

While a sink waits, ``tillflow_flow_sink_blocked{step}`` is 1 (the alert
``TillflowFlowSinkBlocked`` pages after a minute) and every failed attempt counts in
``tillflow_flow_sink_retries_total{step}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis
import structlog
from confluent_kafka import KafkaException

from flows.metrics import FlowMetrics
from flows.sinks.delivery import Pending

T = TypeVar("T")
log = structlog.get_logger(__name__)

# Errors of a service that is down, stalled or restarting; anything else is a bug and
# propagates. ``redis.ConnectionError`` covers BusyLoadingError (Redis loading its file); on a
# Redis Cluster, a master that is down or a slot left uncovered is an outage too.
TRANSIENT: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.SlotNotCoveredError,
    KafkaException,
    Pending,
    OSError,
)


@dataclass(frozen=True)
class Backoff:
    """Exponential waits between attempts, capped: ``base · 2^attempt`` up to ``cap``.

    >>> [Backoff(base_s=0.1, cap_s=1.0).delay(a) for a in range(6)]
    [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    """

    base_s: float = 0.1
    cap_s: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.cap_s, self.base_s * 2 ** min(attempt, 32)))


@dataclass
class RideOut:
    """Calls a write until it succeeds; between failures, waits and reports being blocked.

    ``sleep`` and ``clock`` are injected so tests can run the loop without waiting.
    """

    step_id: str
    metrics: FlowMetrics
    backoff: Backoff = Backoff()
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def __call__(self, write: Callable[[], T]) -> T:
        attempt = 0
        since = 0.0
        while True:
            try:
                result = write()
            except TRANSIENT as exc:
                if attempt == 0:
                    since = self.clock()
                    self.metrics.sink_blocked.labels(self.step_id).set(1)
                self.metrics.sink_retries.labels(self.step_id).inc()
                wait = self.backoff.delay(attempt)
                if attempt == 0 or wait >= self.backoff.cap_s:
                    log.warning(
                        "sink blocked, retrying",
                        step=self.step_id,
                        error=repr(exc),
                        attempt=attempt + 1,
                        blocked_s=round(self.clock() - since, 1),
                        next_try_s=wait,
                    )
                attempt += 1
                self.sleep(wait)
                continue
            if attempt:
                self.metrics.sink_blocked.labels(self.step_id).set(0)
                log.info(
                    "sink unblocked",
                    step=self.step_id,
                    attempts=attempt + 1,
                    blocked_s=round(self.clock() - since, 1),
                )
            return result
