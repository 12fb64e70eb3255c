"""Shopper states for tests that fill Redis through the flows' own recommendation sink."""

from __future__ import annotations

from flows.records import UserSignal
from flows.steps import ShopperState


def viewed(user: str, skus: list[str], categories: dict[str, str]) -> tuple[str, ShopperState]:
    """A shopper who viewed ``skus`` in this order (one session), as the flow learns it."""
    state = ShopperState(user)
    for i, sku in enumerate(skus):
        state.apply(UserSignal("view", 1_700_000_000.0 + i, f"{user}-s", (sku,)), categories)
    return user, state
