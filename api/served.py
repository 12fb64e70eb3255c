"""The served-list log: each list the API serves goes to the ``recommendations-served`` topic.

Serving a list only appends it to a bounded in-memory queue (no I/O, no validation on the
request path); a background task started in the lifespan takes what has queued, turns each
into a ``schemas.served.ServedList`` and produces them in one batch through the API's Kafka
producer (acks=all, each batch bounded by ``TILLFLOW_API_KAFKA_TIMEOUT_S``; not through the
gate of ``POST /events``, whose callers a failed log must not pause). Woken by a list, the task
first waits ``LINGER_S`` for the lists served behind it, and a flush takes only what queued
before it began: at ~600 lists/s a flush on every wake, draining until the queue stayed empty,
sent a produce request (and waited for its acknowledgement) for every list or two, and that
client work cost 0.05–0.09 ms of the API's CPU a list through HTTP
(docs/scaling.md); a list now reaches the log up to ``LINGER_S`` later, and is served no
later. The flow's lake sink keeps the topic in Delta bronze, where the ranker's training
finds what was shown and not chosen (``batch/ranker_data.py``).

The log is best effort by design: a served list must never wait for, or fail because of,
Kafka. When Kafka is unavailable, the queue is full (the oldest list is dropped) or a list
fails the log's schema (a score that is not finite), the lists are counted as dropped
(``tillflow_served_lists_total{outcome="dropped"}``) and the training has fewer real
negatives, nothing else.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import count

import structlog

from api.metrics import ApiMetrics
from infra.errors import ServiceUnavailable
from ingest.producer import EventProducer, in_turns
from schemas.served import MAX_SERVED_ITEMS, ServedList
from schemas.serving import Recommendations
from schemas.topics import RECOMMENDATIONS_SERVED

log = structlog.get_logger(__name__)

CAPACITY = 10_000  # lists waiting to be produced; beyond it the oldest is dropped
BATCH = 500  # lists per produce call
LINGER_S = 0.05  # how long a woken log waits for more lists before producing what queued


def served_list(shown: Recommendations, at: datetime, event_id: str) -> ServedList:
    """The log's event for one served list.

    >>> from schemas.serving import RecommendedItem
    >>> shown = Recommendations(user_id="u1", list_name="again", source="streaming",
    ...     items=[RecommendedItem(sku="tea", score=0.5, source="again")])
    >>> e = served_list(shown, datetime(2026, 1, 5, tzinfo=UTC), "served-1")
    >>> e.user_id, e.list_name, e.served_by, [(i.sku, i.source) for i in e.items]
    ('u1', 'again', 'streaming', [('tea', 'again')])
    """
    return ServedList.model_validate(  # one validation for the list and its items: ~8 us, not 10.5
        {
            "event_id": event_id,
            "event_time": at,
            "user_id": shown.user_id,
            "list_name": shown.list_name,
            "served_by": shown.source,
            "model_version": shown.model_version,
            "items": [
                {"sku": i.sku, "source": i.source, "score": i.score}
                for i in shown.items[:MAX_SERVED_ITEMS]
            ],
        }
    )


class ServedLog:
    """The API process's served-list log (one per process, created in ``AppState``)."""

    def __init__(
        self,
        producer: EventProducer,
        timeout_s: float,
        metrics: ApiMetrics,
        capacity: int = CAPACITY,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        linger_s: float = LINGER_S,
    ) -> None:
        self.producer = producer
        self.linger_s = linger_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.pending: deque[tuple[Recommendations, datetime, str]] = deque(maxlen=capacity)
        # Event ids: this log's random run id and a count (0.1 us a list, a uuid4 1.8 us).
        self._run = uuid.uuid4().hex
        self._serial = count()
        self._logged = metrics.served_lists.labels(outcome="logged")
        self._dropped = metrics.served_lists.labels(outcome="dropped")
        self._wake: asyncio.Event | None = None  # made by run(), on the serving loop
        self._flushing: asyncio.Future[int] | None = None

    def record(self, shown: Recommendations) -> None:
        """Queue a list that was just served (a list with no items shows nothing: skipped)."""
        if not shown.items:
            return
        if len(self.pending) == self.pending.maxlen:
            self._dropped.inc()
        self.pending.append((shown, self.clock(), f"served-{self._run}-{next(self._serial)}"))
        if self._wake is not None:
            self._wake.set()

    async def flush(self) -> int:
        """Produce the lists queued now, in batches; the number acknowledged. Lists served
        while it produces wait for the next flush, which :meth:`run` lingers before."""
        logged = 0
        left = len(self.pending)
        while left and self.pending:
            taken = [self.pending.popleft() for _ in range(min(BATCH, left, len(self.pending)))]
            left -= len(taken)
            events = await self._events(taken)
            if not events:
                continue
            try:
                await self.producer.send_all(
                    RECOMMENDATIONS_SERVED, events, timeout_s=self.timeout_s
                )
            except asyncio.CancelledError:
                # Cancelled mid-send: whoever flushes next sends them again; a list that went
                # through twice keeps its event id (the training reads each id once).
                self.pending.extendleft(reversed(taken))
                raise
            except ServiceUnavailable as exc:
                self._dropped.inc(len(events))
                log.warning("served lists dropped", lists=len(events), error=str(exc))
                break  # the rest waits for the next list served
            self._logged.inc(len(events))
            logged += len(events)
        return logged

    async def _events(self, taken: list[tuple[Recommendations, datetime, str]]) -> list[ServedList]:
        """The log's events of ``taken``, with turns of the loop between them (each is ~8 us:
        a flush's lists at once held the requests behind them); a list the log's schema refuses
        (a score that is not finite, say) is counted as dropped and logged, never raised into
        the task that produces every list."""
        events = []
        async for entry in in_turns(taken):
            try:
                events.append(served_list(*entry))
            except ValueError as exc:  # pydantic's ValidationError is one
                self._dropped.inc()
                log.warning("served list not logged", user_id=entry[0].user_id, error=str(exc))
        return events

    async def run(self) -> None:
        """Produce queued lists as they come, ``linger_s`` after the first of them, until
        cancelled (the lifespan's task). A flush under way is not cancelled with it:
        :meth:`close` waits for it, and sends what lingered."""
        self._wake = wake = asyncio.Event()
        try:
            while True:
                self._flushing = asyncio.ensure_future(self.flush())
                await asyncio.shield(self._flushing)
                await wake.wait()
                await asyncio.sleep(self.linger_s)
                wake.clear()
        finally:
            self._wake = None

    async def close(self) -> None:
        """At shutdown, after cancelling :meth:`run`: let its flush finish, then send what is
        left (each batch bounded in time)."""
        if self._flushing is not None:
            await self._flushing
        await self.flush()
