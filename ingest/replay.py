"""``tillflow replay FILE.jsonl --topic T``: stream a file of events into Kafka.

Each line is one JSON event. Valid lines are produced in file order; invalid ones are
reported with their line numbers and are not produced.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from ingest.producer import EventProducer
from ingest.validation import InvalidEvent, parse_one
from schemas.event_time import EventTimePolicy
from schemas.events import Event
from schemas.settings import Settings
from schemas.topics import Topic

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    error: str


@dataclass
class ReplayReport:
    produced: int = 0
    blank: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    correlation_id: str = field(default_factory=lambda: f"replay-{uuid.uuid4().hex[:12]}")


def read_events(
    path: Path, topic: Topic, report: ReplayReport, policy: EventTimePolicy
) -> Iterator[Event]:
    """Yield the valid events of ``path``; record rejected lines (1-based) in ``report``.

    History replays: old event times are accepted, future ones refused (the event-time policy).
    """
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                report.blank += 1
                continue
            try:
                yield parse_one(topic, line, policy)
            except InvalidEvent as exc:
                report.rejected.append(Rejected(number, str(exc)))


def count_lines(path: Path, chunk: int = 1 << 20) -> int:
    """Lines in ``path`` (a last line without a newline counts), read in 1 MiB chunks."""
    lines, last = 0, b"\n"
    with path.open("rb") as f:
        while block := f.read(chunk):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


async def replay(
    settings: Settings,
    path: Path,
    topic: Topic,
    rate: float = 0.0,
    batch: int = 1_000,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Produce the valid lines of ``path`` to ``topic``; ``rate`` caps events per second.

    ``on_progress`` is told the number of lines handled (produced or rejected) after each batch.
    """
    report = ReplayReport()
    if rate > 0:  # small chunks keep a slow rate smooth
        batch = max(1, min(batch, int(rate / 10)))
    producer = EventProducer(settings)
    await producer.start()
    log.info(
        "replay started", file=str(path), topic=topic.name, correlation_id=report.correlation_id
    )
    cid = report.correlation_id
    started = time.perf_counter()
    chunk: list[Event] = []
    try:
        for event in read_events(path, topic, report, settings.event_time_policy()):
            chunk.append(event)
            if len(chunk) >= batch:
                await producer.send_all(topic, chunk, correlation_id=cid)
                report.produced += len(chunk)
                chunk = []
                if on_progress is not None:
                    on_progress(report.produced + len(report.rejected))
                if rate > 0:
                    ahead = report.produced / rate - (time.perf_counter() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        if chunk:
            await producer.send_all(topic, chunk, correlation_id=cid)
            report.produced += len(chunk)
        if on_progress is not None:
            on_progress(report.produced + len(report.rejected))
    finally:
        await producer.stop()
    return report
