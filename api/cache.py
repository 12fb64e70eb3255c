"""A small in-process cache that also remembers last-known values for when Redis is away,
and the one read path over it: cache, then Redis, then last-known (:func:`read_through`).

``fresh`` answers within the TTL (a *hit*); ``last`` answers regardless of age, which the
API serves flagged ``stale`` while Redis is unavailable. Bounded: the least recently
stored entries go first.

>>> c = LastKnown[str](ttl_s=1.0, max_entries=2)
>>> c.put("a", "1", now=0.0); c.fresh("a", now=0.5), c.fresh("a", now=1.5), c.last("a")
('1', None, '1')
>>> c.put("b", "2", now=0.0); c.put("c", "3", now=0.0); c.last("a") is None
True
>>> c.invalidate("b"); c.fresh("b", now=0.1), c.last("b")
(None, '2')
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from api.redis_gate import RedisGate
from infra.clients import AsyncRedis
from infra.errors import ServiceUnavailable

V = TypeVar("V")


class LastKnown(Generic[V]):
    """TTL cache over keys, keeping the last value of each key for stale serving."""

    def __init__(self, ttl_s: float, max_entries: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def fresh(self, key: str, now: float) -> V | None:
        item = self._items.get(key)
        if item is None or now - item[0] >= self.ttl_s:
            return None
        return item[1]

    def last(self, key: str) -> V | None:
        item = self._items.get(key)
        return None if item is None else item[1]

    def put(self, key: str, value: V, now: float) -> None:
        self._items[key] = (now, value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def stored_at(self, key: str) -> float | None:
        """When ``key``'s value was stored (``-inf`` once invalidated; None: not held)."""
        item = self._items.get(key)
        return None if item is None else item[0]

    def invalidate(self, key: str) -> None:
        """Make the next read of ``key`` go to Redis (the last value stays for stale use)."""
        item = self._items.get(key)
        if item is not None:
            self._items[key] = (float("-inf"), item[1])

    def __len__(self) -> int:
        return len(self._items)


class Requested:
    """The keys read in the last ``window_s`` seconds, the most recently read last: the ones a
    refresh-ahead keeps fresh (:meth:`due`), so that a key read often is re-read from Redis
    in the background, batched, instead of by the request that finds it expired.

    >>> c, r = LastKnown[str](ttl_s=1.0), Requested(window_s=1.0)
    >>> for key in "abc": c.put(key, key, now=0.0)
    >>> r.note("a", now=0.1); r.note("b", now=0.2); r.note("a", now=0.3)
    >>> r.due(c, now=0.6, within_s=0.5, limit=10), r.due(c, now=0.6, within_s=0.5, limit=1)
    (['a', 'b'], ['a'])
    >>> r.due(c, now=1.25, within_s=0.5, limit=10), len(r)  # b not read in the last second
    (['a'], 1)
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._at: dict[str, float] = {}  # key -> when last read, in the order of those times

    def note(self, key: str, now: float) -> None:
        at = self._at
        at.pop(key, None)
        at[key] = now

    def due(self, cache: LastKnown[V], now: float, within_s: float, limit: int) -> list[str]:
        """The keys read within the window whose value in ``cache`` expires within
        ``within_s``, the most recently read first, at most ``limit``. Keys ``cache`` does not
        hold are left out (unknown, or evicted: their next read loads them); keys not read
        within the window are forgotten (they expire as they would without a refresh)."""
        at, oldest = self._at, now - self.window_s
        for key in [k for k, t in at.items() if t < oldest]:
            del at[key]
        due = []
        for key in reversed(at):
            stored = cache.stored_at(key)
            if stored is not None and stored + cache.ttl_s - now <= within_s:
                due.append(key)
                if len(due) == limit:
                    break
        return due

    def __len__(self) -> int:
        return len(self._at)


@dataclass
class Lookup(Generic[V]):
    """What :func:`read_through` found for a set of keys."""

    values: dict[str, V] = field(default_factory=dict)
    hits: int = 0  # fresh in the cache
    misses: int = 0  # read from Redis (unknown keys included)
    stale: list[str] = field(default_factory=list)  # Redis unavailable: last-known served
    error: ServiceUnavailable | None = None  # why Redis could not answer, if it could not
    unavailable: list[str] = field(default_factory=list)  # neither Redis nor a last value


async def read_through(
    gate: RedisGate,
    cache: LastKnown[V],
    keys: list[str],
    read: Callable[[AsyncRedis, list[str]], Awaitable[dict[str, V]]],
    *,
    raw: bool = False,
) -> Lookup[V]:
    """Cache first; one Redis read (``read(client, missing)``) for the rest; last-known
    values when Redis is unavailable. Keys ``read`` leaves out are unknown: not in ``values``."""
    now = time.monotonic()
    out: Lookup[V] = Lookup()
    missing = []
    for key in keys:
        cached = cache.fresh(key, now)
        if cached is None:
            missing.append(key)
        else:
            out.values[key] = cached
            out.hits += 1
    if not missing:
        return out
    try:
        loaded = await gate.run(lambda client: read(client, missing), raw=raw)
    except ServiceUnavailable as exc:
        out.error = exc
        for key in missing:
            last = cache.last(key)
            if last is None:
                out.unavailable.append(key)
            else:
                out.values[key] = last
                out.stale.append(key)
        return out
    out.misses = len(missing)
    for key, value in loaded.items():
        cache.put(key, value, now)
        out.values[key] = value
    return out
