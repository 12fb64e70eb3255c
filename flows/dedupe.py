"""Drop repeated events (same ``event_id``) within a bounded horizon, with bounded memory.

Ids are spread over a fixed number of buckets (a stable hash), so the flow's keyed state has
a fixed number of keys whatever the id space; each bucket remembers the ids of the last
``horizon_s`` seconds of event time, at most ``max_ids`` of them.

>>> seen = RecentIds(horizon_s=60, max_ids=100)
>>> seen.first_time("a", 0.0), seen.first_time("a", 10.0), seen.first_time("a", 200.0)
(True, False, True)
"""

from __future__ import annotations

import zlib
from collections import OrderedDict

from flows.snapshots import PickleCopy

BUCKETS = 64


def bucket_of(event_id: str) -> str:
    """The dedupe bucket (a Bytewax key) of an event id; stable across processes."""
    return str(zlib.crc32(event_id.encode()) % BUCKETS)


class RecentIds(PickleCopy):
    """The ids seen in one bucket recently, oldest first."""

    __slots__ = ("_ids", "duplicates", "horizon_s", "max_ids", "watermark")

    def __init__(self, horizon_s: float = 86_400.0, max_ids: int = 200_000) -> None:
        self.horizon_s = horizon_s
        self.max_ids = max_ids
        self._ids: OrderedDict[str, float] = OrderedDict()
        self.watermark = float("-inf")
        self.duplicates = 0

    def first_time(self, event_id: str, t: float) -> bool:
        """True the first time ``event_id`` is seen within the horizon; counts repeats."""
        self.watermark = max(self.watermark, t)
        cutoff = self.watermark - self.horizon_s
        ids = self._ids
        while ids:
            seen_at = next(iter(ids.values()))
            if seen_at >= cutoff and len(ids) < self.max_ids:
                break
            ids.popitem(last=False)
        if event_id in ids:
            self.duplicates += 1
            return False
        ids[event_id] = max(t, cutoff)
        return True
