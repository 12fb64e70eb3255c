"""Which cached prices a refresh-ahead re-reads (``api/cache.py`` ``Requested``)."""

from __future__ import annotations

from api.cache import LastKnown, Requested


def _cache(keys: str, stored: float) -> LastKnown[str]:
    cache = LastKnown[str](ttl_s=1.0)
    for key in keys:
        cache.put(key, key, now=stored)
    return cache


def test_only_requested_keys_about_to_expire_are_due() -> None:
    cache, requested = _cache("abc", stored=0.0), Requested(window_s=1.0)
    cache.put("d", "d", now=0.5)  # expires at 1.5: not within 0.5 s of 0.7
    for key in "abd":
        requested.note(key, now=0.6)
    # c expires at 1.0 too, but nobody asked for it: it expires as it would without refreshes
    assert sorted(requested.due(cache, now=0.7, within_s=0.5, limit=10)) == ["a", "b"]
    assert requested.due(cache, now=0.4, within_s=0.5, limit=10) == []  # not expiring yet


def test_the_most_recently_requested_come_first_and_the_bound_holds() -> None:
    cache, requested = _cache("abcdef", stored=0.0), Requested(window_s=1.0)
    for i, key in enumerate("abcdef"):
        requested.note(key, now=0.1 + i / 100)
    requested.note("b", now=0.5)  # read again: now the most recent
    assert requested.due(cache, now=0.6, within_s=0.5, limit=3) == ["b", "f", "e"]
    assert requested.due(cache, now=0.6, within_s=0.5, limit=10) == list("bfedca")


def test_keys_not_read_within_the_window_are_forgotten() -> None:
    cache, requested = _cache("ab", stored=0.0), Requested(window_s=1.0)
    requested.note("a", now=0.1)
    requested.note("b", now=0.8)
    assert requested.due(cache, now=1.5, within_s=0.5, limit=10) == ["b"]
    assert len(requested) == 1
    requested.note("a", now=1.6)  # read again: due again
    assert requested.due(cache, now=1.6, within_s=0.5, limit=10) == ["a", "b"]


def test_an_invalidated_key_is_due_and_one_the_cache_does_not_hold_is_not() -> None:
    cache, requested = _cache("ab", stored=1.0), Requested(window_s=1.0)
    requested.note("a", now=1.1)
    requested.note("b", now=1.1)
    requested.note("unknown", now=1.1)  # e.g. evicted: its next read loads it
    assert requested.due(cache, now=1.2, within_s=0.5, limit=10) == []
    cache.invalidate("a")  # a price change heard over pub/sub
    assert requested.due(cache, now=1.2, within_s=0.5, limit=10) == ["a"]
