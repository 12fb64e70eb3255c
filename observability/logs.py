"""Structured logging with structlog: JSON lines in production, readable in a terminal."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from structlog.types import EventDict, WrappedLogger

from infra.redact import redact
from schemas.settings import Settings


def redact_credentials(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Mask ``user:password@`` inside any URL a log line carries (Redis, Neo4j, Kafka).

    >>> redact_credentials(None, "info", {"event": "up", "url": "redis://:pw@h:6379/0", "n": 1})
    {'event': 'up', 'url': 'redis://***@h:6379/0', 'n': 1}
    """
    for key, value in event.items():
        if isinstance(value, str) and "@" in value:
            event[key] = redact(value)
    return event


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route structlog and the standard library's logging through one JSON (or console) renderer.

    Logs go to ``stream``, by default stderr so commands can keep stdout for their results.
    """
    stream = stream or sys.stderr
    level = getattr(logging, settings.log_level.upper())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_credentials,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, redact_credentials, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.INFO) if level < logging.INFO else level)
    for noisy in ("aiokafka", "kafka", "opensearch"):  # opensearch-py logs every request
        logging.getLogger(noisy).setLevel(logging.WARNING)


class LogBudget:
    """At most ``per_s`` lines a second for one kind of line (e.g. one per dead letter), so a
    flood of bad input cannot flood the logs; the lines left out are counted and reported on
    the next line that is written. Counters and dead letters still see every event.

    >>> budget = LogBudget(per_s=2)
    >>> [budget.take(now=10.0) for _ in range(4)]
    [0, 0, None, None]
    >>> budget.take(now=11.0)  # a second later: written, saying two were left out
    2
    """

    def __init__(self, per_s: int) -> None:
        self._per_s = per_s
        self._second = -1
        self._used = 0
        self._skipped = 0

    def take(self, now: float) -> int | None:
        """``None`` to leave this line out, else how many were left out before it."""
        second = int(now)
        if second != self._second:
            self._second, self._used = second, 0
        if self._used >= self._per_s:
            self._skipped += 1
            return None
        self._used += 1
        skipped, self._skipped = self._skipped, 0
        return skipped
