"""Values a sink cannot encode are set aside, counted and logged; the rest are written.

One product with a non-finite feature, or one row Arrow refuses, must not stop the flow
(a sink exception ends the Bytewax process): the value is dropped from the write with a
log line naming the step, the key and the error, and
``tillflow_flow_sink_set_aside_total{step}`` counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import structlog

from flows.metrics import FlowMetrics

T = TypeVar("T")
U = TypeVar("U")
log = structlog.get_logger(__name__)
VALUE_CHARS = 300  # of the value's repr, in the log line

# What encoding a malformed value raises: pydantic's ValidationError is a ValueError,
# orjson's JSONEncodeError a TypeError, a bad float an OverflowError, bad text UnicodeError.
UNENCODABLE: tuple[type[Exception], ...] = (ValueError, TypeError, OverflowError, ArithmeticError)


def encode_each(
    step_id: str,
    metrics: FlowMetrics,
    items: Iterable[T],
    encode: Callable[[T], U],
    key: Callable[[T], str] = repr,
) -> list[tuple[T, U]]:
    """``(item, encode(item))`` for every item that encodes; the others are set aside."""
    out: list[tuple[T, U]] = []
    for item in items:
        try:
            out.append((item, encode(item)))
        except UNENCODABLE as exc:
            set_aside(step_id, metrics, key(item), item, exc)
    return out


def set_aside(step_id: str, metrics: FlowMetrics, key: str, value: object, exc: Exception) -> None:
    """Count and log one value left out of a write."""
    metrics.sink_set_aside.labels(step_id).inc()
    log.error(
        "value set aside: it cannot be encoded",
        step=step_id,
        key=key,
        error=repr(exc),
        value=repr(value)[:VALUE_CHARS],
    )
