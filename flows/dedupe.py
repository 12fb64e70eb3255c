"""Drop repeated events (same ``event_id``) within a bounded horizon, with bounded memory and
snapshots that cost only what changed.

A repeat is the same event sent again: same id, same event time. Ids are kept per key
``<event-time minute>:<shard>`` (:func:`dedupe_key`), so a repeat always meets its original,
and only the keys of the minutes being read change in an epoch: a recovery snapshot copies
those, not every id of the horizon (a single set per shard was copied whole at every
snapshot, and stalled the flow for seconds). A key's ids are forgotten ``horizon_s`` after
it last saw an event (wall clock, Bytewax's notification timer), so memory holds at most the
ids read within the horizon.

>>> clock = iter([0.0, 1.0, 1.5, 2.0]).__next__
>>> seen = SeenIds(horizon_s=60, clock=clock)
>>> [seen.on_item(Item("a"))[0], seen.on_item(Item("a"))[0], seen.on_item(Item("b"))[0]]
[[Item(event_id='a')], [None], [Item(event_id='b')]]
>>> seen.notify_at().timestamp(), seen.on_notify()
(62.0, ((), True))
>>> dedupe_key("a", 125.0) == dedupe_key("a", 179.9), dedupe_key("a", 125.0).split(":")[0]
(True, '2')
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, Protocol, TypeVar

from bytewax.operators import StatefulLogic

SHARDS = 4  # keys per minute: spreads one minute's ids over up to 4 workers
SLICE_S = 60.0


class HasEventId(Protocol):
    @property
    def event_id(self) -> str: ...


E = TypeVar("E", bound=HasEventId)


class Item(NamedTuple):  # for the examples
    event_id: str


def dedupe_key(event_id: str, t: float) -> str:
    """The Bytewax key of an event: its event-time minute and a stable hash of its id."""
    return f"{int(t // SLICE_S)}:{zlib.crc32(event_id.encode()) % SHARDS}"


@dataclass(frozen=True, slots=True)
class SeenSnapshot:
    ids: frozenset[str]
    active_at: float  # wall clock (epoch seconds) of the key's latest event


class SeenIds(StatefulLogic[E, E | None, SeenSnapshot]):
    """One key's ids: emits each event the first time, ``None`` for a repeat."""

    def __init__(
        self,
        horizon_s: float,
        resume: SeenSnapshot | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.horizon_s = horizon_s
        self.clock = clock
        self.ids: set[str] = set(resume.ids) if resume is not None else set()
        self.active_at = resume.active_at if resume is not None else clock()

    def on_item(self, value: E) -> tuple[list[E | None], bool]:
        self.active_at = self.clock()
        if value.event_id in self.ids:
            return [None], StatefulLogic.RETAIN
        self.ids.add(value.event_id)
        return [value], StatefulLogic.RETAIN

    def notify_at(self) -> datetime:
        return datetime.fromtimestamp(self.active_at + self.horizon_s, UTC)

    def on_notify(self) -> tuple[tuple[()], bool]:
        return (), StatefulLogic.DISCARD  # quiet for the whole horizon: forget the ids

    def snapshot(self) -> SeenSnapshot:
        return SeenSnapshot(frozenset(self.ids), self.active_at)
