"""When a sink sets a key's expiry again (flows/sinks/expiry.py): pure, clock injected."""

from __future__ import annotations

import pytest

from flows.sinks.expiry import REFRESH_S, Expiry


@pytest.mark.parametrize(
    ("ttl_s", "writes", "due"),
    [
        # a long TTL: set at most once a minute
        (86_400, [0.0, 1.0, 59.9, 60.0, 61.0, 200.0], [True, False, False, True, False, True]),
        # a short TTL: at most a tenth of it goes by without setting it
        (100, [0.0, 9.0, 10.0, 15.0, 20.5], [True, False, True, False, True]),
    ],
)
def test_expiry_is_due_once_per_period(ttl_s: float, writes: list[float], due: list[bool]) -> None:
    clock = iter(writes).__next__
    expiry = Expiry(ttl_s, clock=clock)
    assert [expiry.due("k") for _ in writes] == due
    assert expiry.every_s == min(REFRESH_S, ttl_s / 10)


def test_keys_are_independent_and_a_mark_counts_as_set() -> None:
    now = [0.0]
    expiry = Expiry(86_400, clock=lambda: now[0])
    expiry.mark("a")
    assert (expiry.due("a"), expiry.due("b")) == (False, True)
    now[0] = 61.0
    assert (expiry.due("a"), expiry.due("b")) == (True, True)


def test_a_forgotten_key_is_due_again() -> None:
    expiry = Expiry(86_400, clock=lambda: 0.0, remembered=2)
    assert [expiry.due(k) for k in "abc"] == [True, True, True]
    assert list(expiry.set_at) == ["b", "c"]  # bounded: the least recent went
    assert (expiry.due("a"), expiry.due("c")) == (True, False)
