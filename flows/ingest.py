"""From a batch of Kafka messages to what the rest of the flow needs, in one Python step.

Each message is validated (:func:`flows.parse.parse_message`) and counted
(:meth:`flows.metrics.FlowMetrics.on_parsed`); a valid one becomes its bronze row
(:class:`flows.records.LakeRow`) and its routed signals (:class:`flows.steps.Routed`). The
batch leaves as one :class:`Ingested` value that holds them grouped by the key of the step
they go to: bronze rows per Kafka (topic, partition), routed events per dedupe key.

Bytewax pays for every item at every step (a Python call, a slot in its buffers, a pickle when
the item crosses to another process). Grouped, a batch of a few thousand messages crosses the
steps before the keyed states as a few dozen items, and each keyed step receives one list per
key instead of one item per message. Within a group the messages keep their order in the
batch (the Kafka input hands batches over in timestamp order, :mod:`flows.kafka_in`).

>>> from schemas.event_time import EventTimePolicy
>>> from schemas.topics import INVENTORY
>>> from flows.kafka_in import SourceMessage
>>> stock = b'{"event_id": "e1", "event_time": "2026-01-05T00:00:00Z", "sku": "S", '
>>> stock += b'"store_id": "a", "on_hand": 3}'
>>> batch = [(1, stock), (2, b"{"), (3, stock)]
>>> ingest = Ingest({"x.inventory": INVENTORY}, EventTimePolicy(clock=lambda: 1_767_571_200.0))
>>> messages = [SourceMessage(b"k", v, "x.inventory", partition=0, offset=o) for o, v in batch]
>>> (out,) = ingest(messages)
>>> [r.offset for r in out.rejected], [(key, len(rows)) for key, rows in out.lake]
([2], [('inventory:0', 2)])
>>> [(key, [r.event_id for r in events]) for key, events in out.events]  # a repeat: for dedupe
[('29459520:3', ['e1', 'e1'])]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Protocol

from flows.dedupe import dedupe_key
from flows.parse import parse_message, received_at
from flows.records import Accepted, LakeRow, Rejected
from flows.steps import Routed
from schemas.event_time import EventTimePolicy
from schemas.topics import Topic


class Message(Protocol):
    """What ingest reads of a message: the flow's input hands over
    :class:`flows.kafka_in.SourceMessage`; Bytewax's ``KafkaSourceMessage`` has the same
    fields."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def topic(self) -> str | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...
    @property
    def offset(self) -> int | None: ...
    @property
    def partition(self) -> int | None: ...
    @property
    def timestamp(self) -> tuple[int, int] | None: ...


class Ingested(NamedTuple):
    """One batch of messages, grouped by where each part goes next."""

    rejected: list[Rejected]  # to the dead-letter topic, one by one
    lake: list[tuple[str, list[LakeRow]]]  # bronze rows per "<topic>:<partition>"
    events: list[tuple[str, list[Routed]]]  # valid events per dedupe key (flows.dedupe)


def _uncounted(_step_id: str, _item: Accepted | Rejected) -> None:
    return None


class Ingest:
    """The ``flat_map_batch`` mapper of the flow's first step: a batch in, one
    :class:`Ingested` out (none for an empty batch)."""

    def __init__(
        self,
        topics: Mapping[str, Topic],
        policy: EventTimePolicy,
        on_parsed: Callable[[str, Accepted | Rejected], None] = _uncounted,
        step_id: str = "ingest",
    ) -> None:
        self.topics = topics
        # what the project writes itself (the served-list log) is kept in bronze, never routed
        self.kept_only = frozenset(t.name for t in topics.values() if t.direction != "in")
        self.policy = policy
        self.on_parsed = on_parsed
        self.step_id = step_id

    def parse(self, m: Message) -> Accepted | Rejected:
        return parse_message(
            self.topics,
            m.topic or "",
            m.partition or 0,
            m.offset or 0,
            m.key,
            m.value,
            m.headers,
            policy=self.policy,
            received=received_at(m.timestamp),
        )

    def __call__(self, batch: Sequence[Message]) -> list[Ingested]:
        if not batch:
            return []
        rejected: list[Rejected] = []
        lake: dict[tuple[str, int], list[LakeRow]] = {}
        events: dict[str, list[Routed]] = {}
        parse, on_parsed, kept_only = self.parse, self.on_parsed, self.kept_only
        for m in batch:
            rec = parse(m)
            on_parsed(self.step_id, rec)
            if isinstance(rec, Rejected):
                rejected.append(rec)
                continue
            lake.setdefault((rec.topic, rec.partition), []).append(LakeRow.of(rec))
            if rec.topic in kept_only:
                continue
            routed = Routed.of(rec)
            events.setdefault(dedupe_key(routed.event_id, routed.t), []).append(routed)
        rows = [(f"{topic}:{partition}", each) for (topic, partition), each in lake.items()]
        return [Ingested(rejected, rows, list(events.items()))]
