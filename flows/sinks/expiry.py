"""When a writer sets a key's expiry again: not at every write of a key written often.

A key the flow writes expires a TTL after its last write, so each write used to carry an
``EXPIRE`` (a feature row's hash: two commands instead of one; a product's: four instead of
two). ``HSET`` keeps a key's TTL, so a key whose expiry this writer set less than
``every_s`` ago needs none: it then expires between ``ttl - every_s`` and ``ttl`` after its
last write (``every_s`` is at most a tenth of the TTL, and a minute). Hot keys (the products
of every batch, an active shopper's) thereby cost one command per write; a key written again
after ``every_s`` gets its ``EXPIRE`` as before. The memory is bounded (least recent out); a
key it forgot gets its ``EXPIRE`` again, which is what it would have had anyway.

>>> clock = iter([0.0, 30.0, 61.0, 62.0]).__next__
>>> ttl = Expiry(ttl_s=86_400, clock=clock)
>>> [ttl.due("a"), ttl.due("a"), ttl.due("a"), ttl.due("a")]
[True, False, True, False]
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

REFRESH_S = 60.0  # the longest a write goes without setting its key's expiry again
REMEMBERED = 200_000  # keys per writer


class Expiry:
    """Says for each write whether its key's expiry must be set (module doc).

    Ask once per key and batch, before the batch's Redis round trip (whose retries then
    send the same commands).
    """

    def __init__(
        self,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        remembered: int = REMEMBERED,
    ) -> None:
        self.every_s = min(REFRESH_S, ttl_s / 10)
        self.clock = clock
        self.remembered = remembered
        self.set_at: OrderedDict[Hashable, float] = OrderedDict()

    def due(self, key: Hashable) -> bool:
        """True when the write of ``key`` must set its expiry (and it is then counted as set)."""
        now = self.clock()
        last = self.set_at.get(key)
        if last is not None and now - last < self.every_s:
            return False
        self._set(key, now)
        return True

    def mark(self, key: Hashable) -> None:
        """Count ``key``'s expiry as set now (a write that always sets it: ``SET … EX``)."""
        self._set(key, self.clock())

    def _set(self, key: Hashable, now: float) -> None:
        self.set_at[key] = now
        self.set_at.move_to_end(key)
        if len(self.set_at) > self.remembered:
            self.set_at.popitem(last=False)
