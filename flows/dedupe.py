"""Drop repeated events (same ``event_id``) within a bounded horizon, in at most 8 bytes per
remembered id, with snapshots that cost only what changed.

A repeat is the same event sent again: same id, same event time. Ids are kept per key
``<event-time minute>:<shard>`` (:func:`dedupe_key`), so a repeat always meets its original,
and only the keys of the minutes being read change in an epoch: a recovery snapshot copies
those, not every id of the horizon. A key's ids are forgotten ``horizon_s`` after it last saw
an event (wall clock, Bytewax's notification timer), so memory holds at most the ids read
within the horizon: ``rate × horizon × 8`` bytes (2,000 events/s for an hour: 58 MB).

An id is remembered as a 64-bit hash (:func:`id_hash`) in a sorted ``array('Q')``, with a
small set of recent hashes merged into the array when it grows past a sixteenth of it and at
every snapshot. Two different ids of one key collide with probability ``n² / 2⁶⁵`` (n ids in
the key): for a key holding 100,000 ids, 3 × 10⁻¹⁰ — a falsely dropped event is that rare.

>>> clock = iter([0.0, 1.0, 1.5, 2.0]).__next__
>>> seen = SeenIds(horizon_s=60, clock=clock)
>>> [seen.on_item(Item("a"))[0], seen.on_item(Item("a"))[0], seen.on_item(Item("b"))[0]]
[[Item(event_id='a')], [None], [Item(event_id='b')]]
>>> seen.notify_at().timestamp(), seen.on_notify()
(62.0, ((), True))
>>> len(seen.snapshot().hashes), len(seen)  # two ids, 8 bytes each
(16, 2)
>>> dedupe_key("a", 125.0) == dedupe_key("a", 179.9), dedupe_key("a", 125.0).split(":")[0]
(True, '2')
"""

from __future__ import annotations

import hashlib
import sys
import time
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, NamedTuple, Protocol, TypeAlias, TypeVar

import numpy as np
from bytewax.operators import StatefulBatchLogic, StatefulLogic

SHARDS = 4  # keys per minute: spreads one minute's ids over up to 4 workers
SLICE_S = 60.0
MERGE_MIN = 64  # recent hashes kept apart before merging, at least
ID_BYTES = 8

Hashes: TypeAlias = "array[int]"  # array("Q"): sorted unsigned 64-bit hashes, 8 bytes each


class HasEventId(Protocol):
    @property
    def event_id(self) -> str: ...


E = TypeVar("E", bound=HasEventId)


class Item(NamedTuple):  # for the examples
    event_id: str


def dedupe_key(event_id: str, t: float) -> str:
    """The Bytewax key of an event: its event-time minute and a stable hash of its id."""
    return f"{int(t // SLICE_S)}:{zlib.crc32(event_id.encode()) % SHARDS}"


def id_hash(event_id: str) -> int:
    """A stable 64-bit hash of an id (BLAKE2b), the same in every process and run."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=ID_BYTES).digest()
    return int.from_bytes(digest, "little")


def merged(hashes: Hashes, recent: set[int]) -> Hashes:
    """``hashes`` (sorted) with ``recent`` merged in, still sorted.

    >>> merged(array("Q", [2, 9]), {5, 1}).tolist()
    [1, 2, 5, 9]
    """
    if not recent:
        return hashes
    new = np.fromiter(recent, dtype=np.uint64, count=len(recent))
    new.sort()
    both = np.concatenate((np.frombuffer(hashes, dtype=np.uint64), new))
    both.sort(kind="stable")  # two sorted runs: a linear merge
    out = array("Q")
    out.frombytes(both.tobytes())
    return out


@dataclass(frozen=True, slots=True)
class SeenSnapshot:
    hashes: bytes  # sorted native-endian uint64 hashes of the key's ids
    active_at: float  # wall clock (epoch seconds) of the key's latest event

    def __reduce__(self) -> tuple[type[SeenSnapshot], tuple[bytes, float]]:
        # pickled at each epoch's end for every key read in it: built from its fields, without
        # the Python that dataclasses' own __getstate__ runs to list them
        return SeenSnapshot, (self.hashes, self.active_at)


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
        self.hashes: Hashes = array("Q")
        if resume is not None:
            self.hashes.frombytes(resume.hashes)
        self.recent: set[int] = set()
        self.active_at = resume.active_at if resume is not None else clock()

    def __len__(self) -> int:
        return len(self.hashes) + len(self.recent)

    def _seen(self, h: int) -> bool:
        if h in self.recent:
            return True
        hashes = self.hashes
        i = bisect_left(hashes, h)
        return i < len(hashes) and hashes[i] == h

    def on_item(self, value: E) -> tuple[list[E | None], bool]:
        first = self.first_seen([value])
        return [first[0] if first else None], StatefulLogic.RETAIN

    def first_seen(self, values: list[E]) -> list[E]:
        """``values`` (in order) whose id this key has not seen before, each id once."""
        self.active_at = self.clock()
        recent, unique = self.recent, []
        for value in values:
            h = id_hash(value.event_id)
            if self._seen(h):
                continue
            recent.add(h)
            unique.append(value)
            if len(recent) > max(MERGE_MIN, len(self.hashes) // 16):
                self._merge()
                recent = self.recent
        return unique

    def _merge(self) -> None:
        self.hashes = merged(self.hashes, self.recent)
        self.recent = set()

    def notify_at(self) -> datetime:
        return datetime.fromtimestamp(self.active_at + self.horizon_s, UTC)

    def on_notify(self) -> tuple[tuple[()], bool]:
        return (), StatefulLogic.DISCARD  # quiet for the whole horizon: forget the ids

    def snapshot(self) -> SeenSnapshot:
        self._merge()
        return SeenSnapshot(self.hashes.tobytes(), self.active_at)

    def memory_bytes(self) -> int:
        """Bytes held for the ids: the array, plus the recent set not merged yet."""
        recent = sys.getsizeof(self.recent) + sum(sys.getsizeof(h) for h in self.recent)
        return len(self.hashes) * self.hashes.itemsize + recent


class Deduped(NamedTuple, Generic[E]):
    """What one batch of a dedupe key's events left: the first of each id, and how many
    repeats were dropped."""

    unique: list[E]
    repeats: int


class SeenBatches(StatefulBatchLogic[list[E], Deduped[E], SeenSnapshot]):
    """:class:`SeenIds` for a step whose values are lists of events (:mod:`flows.ingest`):
    one :class:`Deduped` per key and batch; the same ids, expiry and snapshots.

    >>> logic = SeenBatches(SeenIds(60.0, clock=lambda: 0.0))
    >>> logic.on_batch([[Item("a"), Item("b")], [Item("a")]])
    ([Deduped(unique=[Item(event_id='a'), Item(event_id='b')], repeats=1)], False)
    >>> logic.on_batch([[Item("b"), Item("c")]])[0]
    [Deduped(unique=[Item(event_id='c')], repeats=1)]
    """

    def __init__(self, seen: SeenIds[E]) -> None:
        self.seen = seen

    def on_batch(self, values: list[list[E]]) -> tuple[list[Deduped[E]], bool]:
        events = values[0] if len(values) == 1 else [e for group in values for e in group]
        unique = self.seen.first_seen(events)
        return [Deduped(unique, len(events) - len(unique))], StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime:
        return self.seen.notify_at()

    def on_notify(self) -> tuple[tuple[()], bool]:
        return self.seen.on_notify()

    def snapshot(self) -> SeenSnapshot:
        return self.seen.snapshot()
