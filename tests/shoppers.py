"""Shoppers' lists for tests that fill Redis through the flows' own recommendation sink."""

from __future__ import annotations

from flows.records import ShopperLists, UserSignal
from flows.steps import ShopperState

K = 10  # items to buy again (Settings.recommendations_k's default)


def viewed(user: str, skus: list[str], categories: dict[str, str], k: int = K) -> ShopperLists:
    """The lists of a shopper who viewed ``skus`` in this order (one session), as the flow's
    shopper step emits them."""
    signals = [
        UserSignal("view", 1_700_000_000.0 + i, f"{user}-s", (s,)) for i, s in enumerate(skus)
    ]
    (out,) = ShopperState(user).apply_batch(signals, categories, k)
    return out.lists
