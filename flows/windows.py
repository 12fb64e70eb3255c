"""Sliding event-time sums kept in fixed buckets, updated per event in O(1) amortised.

A window sums several measures with one list of buckets, so it moves (and is snapshotted)
once for all of them.

>>> w = SlidingSums(bucket_s=60, buckets=5, width=1)  # a 5-minute window in 1-minute buckets
>>> for t, v in [(0, 1.0), (30, 2.0), (130, 4.0)]:
...     _ = w.add(t, 0, v)
>>> w.totals
[7.0]
>>> w.add(330, 0, 1.0)       # the watermark moves to 330 s: buckets before 60 s fall out
True
>>> w.totals
[5.0]
"""

from __future__ import annotations

from array import array
from collections import deque
from itertools import chain
from typing import Any


class SlidingSums:
    """The sums of ``width`` measures whose event time lies in the last ``buckets × bucket_s``
    seconds: one list of buckets holds every measure's value in it, so moving the window's
    end evicts a bucket once for all measures.

    The window ends at the latest event time seen (the per-key watermark). Values older
    than the window are ignored by this window (the caller counts them as late).

    >>> w = SlidingSums(bucket_s=60, buckets=5, width=2)
    >>> for t, i, v in [(0, 0, 1.0), (30, 1, 2.0), (130, 0, 4.0)]:
    ...     _ = w.add(t, i, v)
    >>> w.totals
    [5.0, 2.0]
    >>> w.add(330, 1, 1.0), w.totals  # buckets before 60 s fall out of both measures
    (True, [4.0, 1.0])
    >>> w.add(0, 0, 9.0)  # outside the window: ignored
    False
    """

    __slots__ = ("_buckets", "bucket_s", "buckets", "head", "totals", "width")

    def __init__(self, bucket_s: int, buckets: int, width: int) -> None:
        self.bucket_s = bucket_s
        self.buckets = buckets
        self.width = width
        # [bucket index, measure 0, measure 1, ...], oldest first
        self._buckets: deque[list[float]] = deque()
        self.head = -1  # newest bucket index seen
        self.totals = [0.0] * width

    def add(self, t: float, measure: int, value: float) -> bool:
        """Add ``value`` to ``measure`` at event time ``t``; False if ``t`` is already
        outside the window."""
        b = int(t // self.bucket_s)
        if b > self.head:
            self.head = b
            self._evict()
        if b <= self.head - self.buckets:
            return False
        buckets = self._buckets
        if buckets and buckets[-1][0] == b:
            entry = buckets[-1]
        elif not buckets or buckets[-1][0] < b:
            entry = self._new(b)
            buckets.append(entry)
        else:  # a late value inside the window: find its bucket
            entry = self._late(b)
        entry[measure + 1] += value
        self.totals[measure] += value
        return True

    def advance(self, t: float) -> None:
        """Move the window's end to ``t`` without adding anything."""
        b = int(t // self.bucket_s)
        if b > self.head:
            self.head = b
            self._evict()

    def _new(self, b: int) -> list[float]:
        entry = [0.0] * (self.width + 1)
        entry[0] = b
        return entry

    def _late(self, b: int) -> list[float]:
        buckets = self._buckets
        for i, entry in enumerate(buckets):
            if entry[0] == b:
                return entry
            if entry[0] > b:
                new = self._new(b)
                buckets.insert(i, new)
                return new
        raise AssertionError("a late bucket lies before the newest one")  # pragma: no cover

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # One block of doubles (bucket indices are exact in them): pickled in C, 8 bytes each.
        flat = array("d", chain.from_iterable(self._buckets)).tobytes()
        args = (self.bucket_s, self.buckets, self.width, self.head, self.totals, flat)
        return _restore_sums, args

    def _evict(self) -> None:
        oldest = self.head - self.buckets
        buckets, totals = self._buckets, self.totals
        while buckets and buckets[0][0] <= oldest:
            entry = buckets.popleft()
            for i in range(self.width):
                totals[i] -= entry[i + 1]
        if not buckets:
            self.totals = [0.0] * self.width  # no float drift once empty


def _restore_sums(
    bucket_s: int, buckets: int, width: int, head: int, totals: list[float], flat: bytes
) -> SlidingSums:
    w = SlidingSums(bucket_s, buckets, width)
    w.head, w.totals = head, list(totals)
    numbers, step = array("d", flat).tolist(), width + 1
    for i in range(0, len(numbers), step):
        entry: list[float] = numbers[i : i + step]
        entry[0] = int(entry[0])
        w._buckets.append(entry)
    return w
