"""The flow's Kafka input: consumer errors are counted and logged, never fatal.

Bytewax's ``KafkaSource`` either raises on a consumer error (its default: one broker
restart ends the flow) or, with ``raise_on_errors=False``, emits ``KafkaError`` items among
the messages and moves its resume offset to the errored message's offset, which librdkafka
sets to -1001 for errors that belong to no message. :class:`TolerantKafkaSource` wraps it:
errors never enter the dataflow (``tillflow_flow_consumer_errors_total{code}`` and a log
line instead), and the snapshot is always the offset after the last real message, so a
restart resumes exactly there. librdkafka itself reconnects and refetches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import structlog
from bytewax.connectors.kafka import KafkaError, KafkaSource, KafkaSourceMessage
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import KafkaError as ConfluentError

Message = KafkaSourceMessage[bytes | None, bytes | None]
log = structlog.get_logger(__name__)


class TolerantKafkaSource(FixedPartitionedSource[Message, int | None]):
    """``KafkaSource`` over ``topics`` whose consumer errors are reported to ``on_error``."""

    def __init__(
        self,
        brokers: list[str],
        topics: list[str],
        *,
        tail: bool,
        batch_size: int,
        on_error: Callable[[ConfluentError], None],
    ) -> None:
        self.on_error = on_error
        # error_cb: client-wide errors (all brokers down, transport) go to the callback
        # instead of arriving as messages.
        self.inner = KafkaSource(
            brokers,
            topics,
            tail=tail,
            batch_size=batch_size,
            raise_on_errors=False,
            add_config={"error_cb": on_error},  # type: ignore[dict-item]
        )

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _TolerantPartition:
        inner = self.inner.build_part(step_id, for_part, resume_state)
        return _TolerantPartition(inner, resume_state, self.on_error)


class _TolerantPartition(StatefulSourcePartition[Message, int | None]):
    def __init__(
        self,
        inner: StatefulSourcePartition[Any, int | None],
        resume_state: int | None,
        on_error: Callable[[ConfluentError], None],
    ) -> None:
        self.inner = inner
        self.on_error = on_error
        self.resume = inner.snapshot() if resume_state is None else resume_state

    def next_batch(self) -> Iterable[Message]:
        batch: list[Message] = []
        for item in self.inner.next_batch():
            if isinstance(item, KafkaError):
                self.on_error(item.err)
                continue
            batch.append(item)
            if item.offset is not None and item.offset >= 0:
                self.resume = item.offset + 1
        return batch

    def next_awake(self) -> datetime | None:
        return self.inner.next_awake()

    def snapshot(self) -> int | None:
        return self.resume

    def close(self) -> None:
        self.inner.close()
