"""Sliding event-time sums kept in fixed buckets, updated per event in O(1) amortised.

>>> w = SlidingSum(bucket_s=60, buckets=5)     # a 5-minute window in 1-minute buckets
>>> for t, v in [(0, 1.0), (30, 2.0), (130, 4.0)]:
...     _ = w.add(t, v)
>>> w.total
7.0
>>> w.add(330, 1.0)          # the watermark moves to 330 s: buckets before 60 s fall out
True
>>> w.total
5.0
"""

from __future__ import annotations

from collections import deque
from itertools import chain
from typing import Any


class SlidingSum:
    """The sum of values whose event time lies in the last ``buckets × bucket_s`` seconds.

    The window ends at the latest event time seen (the per-key watermark). Values older
    than the window are ignored by this window (the caller counts them as late).
    """

    __slots__ = ("_buckets", "bucket_s", "buckets", "head", "total")

    def __init__(self, bucket_s: int, buckets: int) -> None:
        self.bucket_s = bucket_s
        self.buckets = buckets
        self._buckets: deque[list[float]] = deque()  # [bucket index, sum], oldest first
        self.head = -1  # newest bucket index seen
        self.total = 0.0

    def add(self, t: float, value: float) -> bool:
        """Add ``value`` at event time ``t``; False if ``t`` is already outside the window."""
        b = int(t // self.bucket_s)
        if b > self.head:
            self.head = b
            self._evict()
        if b <= self.head - self.buckets:
            return False
        if self._buckets and self._buckets[-1][0] == b:
            self._buckets[-1][1] += value
        elif not self._buckets or self._buckets[-1][0] < b:
            self._buckets.append([b, value])
        else:  # a late value inside the window: find its bucket
            for entry in self._buckets:
                if entry[0] == b:
                    entry[1] += value
                    break
                if entry[0] > b:
                    self._buckets.insert(self._buckets.index(entry), [b, value])
                    break
        self.total += value
        return True

    def advance(self, t: float) -> None:
        """Move the window's end to ``t`` without adding anything."""
        b = int(t // self.bucket_s)
        if b > self.head:
            self.head = b
            self._evict()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Flat numbers pickle several times faster than a deque of small lists: every
        # product's windows are snapshotted at each epoch (flows/snapshots.py).
        flat = list(chain.from_iterable(self._buckets))
        return _restore, (self.bucket_s, self.buckets, self.head, self.total, flat)

    def _evict(self) -> None:
        oldest = self.head - self.buckets
        while self._buckets and self._buckets[0][0] <= oldest:
            self.total -= self._buckets.popleft()[1]
        if not self._buckets:
            self.total = 0.0  # no float drift once empty


def _restore(bucket_s: int, buckets: int, head: int, total: float, flat: list[Any]) -> SlidingSum:
    w = SlidingSum(bucket_s, buckets)
    w.head, w.total = head, total
    w._buckets.extend([int(flat[i]), flat[i + 1]] for i in range(0, len(flat), 2))
    return w
