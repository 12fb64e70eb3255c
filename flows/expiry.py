"""Keyed state that is dropped after an idle time: one shopper's or one product's state.

Each key's state is created from the key on its first value (the value carries its key,
``(key, value)``), updated by every value, and discarded ``idle_s`` after its last value
(wall clock, Bytewax's notification timer). A shopper who never comes back costs memory for
``idle_s``, not forever; one who comes back later starts afresh. Snapshots carry the state
(pickled once, :mod:`flows.snapshots`) and the time of its last value, so a recovered key
keeps its deadline.

Bytewax hands a keyed step its values a batch at a time, grouped by key: the values of one
key keep their order, but a batch mixes what the upstream steps (themselves keyed by other
things) emitted in their key order. With ``when`` (a value's event time) each batch is
applied in event-time order, so a state that counts time between its events does not see
it run backwards within a batch (the Kafka input hands over batches in timestamp order,
:mod:`flows.kafka_in`).

>>> clock = iter([0.0, 10.0, 20.0]).__next__
>>> logic = IdleExpiring(
...     lambda key: [key], lambda s, v: s.append(v) or len(s), 60, clock=clock, when=len
... )
>>> logic.on_batch([("a", "xx"), ("a", "y")]), logic.on_batch([("a", "z")])
(([2, 3], False), ([4], False))
>>> logic.state
['a', 'y', 'xx', 'z']
>>> logic.notify_at().timestamp(), logic.on_notify()
(80.0, ((), True))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from bytewax.operators import StatefulBatchLogic

from flows.snapshots import pickled

S = TypeVar("S")  # the state
V = TypeVar("V")  # what a value carries besides its key
W = TypeVar("W")  # what the step emits per value


@dataclass(frozen=True, slots=True)
class IdleSnapshot:
    state: Any  # the state, pickled once (flows.snapshots); loads as the state itself
    active_at: float  # wall clock (epoch seconds) of the key's latest value


class IdleExpiring(StatefulBatchLogic[tuple[str, V], W, IdleSnapshot], Generic[S, V, W]):
    """Applies each ``(key, value)`` to the key's state, a batch in the order of ``when``;
    forgets the state when idle."""

    def __init__(
        self,
        new: Callable[[str], S],
        apply: Callable[[S, V], W],
        idle_s: float,
        resume: IdleSnapshot | None = None,
        clock: Callable[[], float] = time.time,
        when: Callable[[V], float] | None = None,
    ) -> None:
        self.new = new
        self.when = when
        self.apply = apply
        self.idle_s = idle_s
        self.clock = clock
        self.state: S | None = resume.state if resume is not None else None
        self.active_at = resume.active_at if resume is not None else clock()

    def on_batch(self, values: list[tuple[str, V]]) -> tuple[list[W], bool]:
        if self.state is None:
            self.state = self.new(values[0][0])
        self.active_at = self.clock()
        state, items = self.state, [v for _, v in values]
        if self.when is not None and len(items) > 1:
            items.sort(key=self.when)  # stable: equal times keep their order
        return [self.apply(state, v) for v in items], StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime:
        return datetime.fromtimestamp(self.active_at + self.idle_s, UTC)

    def on_notify(self) -> tuple[tuple[()], bool]:
        return (), StatefulBatchLogic.DISCARD

    def snapshot(self) -> IdleSnapshot:
        return IdleSnapshot(pickled(self.state), self.active_at)
