"""A category's prices do not depend on how its signals were batched: reading a product's
posterior (for its feature row at the end of each batch, or a price) leaves its learner as it
was, so a tailing flow's small batches and a replay's large ones publish the same prices."""

from __future__ import annotations

import random

import pytest

from flows.records import SkuSignal
from flows.steps import CategoryState
from online_models.pricer import PriceChange
from schemas.catalogue import CatalogueItem

T0 = 1_767_571_200.0
CATALOGUE = {
    f"tea{i}": CatalogueItem(sku=f"tea{i}", category="tea", list_price=10.0, unit_cost=6.0)
    for i in range(6)
}


def _signals(seed: int, n: int) -> list[tuple[str, SkuSignal]]:
    """A minute apart: views, carts and till sales of the category's products."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        sku, t = rng.choice(list(CATALOGUE)), T0 + k * 60
        kind = rng.choice(["view"] * 6 + ["add_to_cart", "sale", "sale"])
        if kind == "sale":
            out.append((sku, SkuSignal("sale", t, rng.randint(1, 3), round(rng.uniform(8, 11), 2))))
        else:
            out.append((sku, SkuSignal(kind, t)))
    return out


def _prices(signals: list[tuple[str, SkuSignal]], batch: int) -> list[PriceChange]:
    state, changes = CategoryState(), []
    for i in range(0, len(signals), batch):
        for out in state.apply_batch(signals[i : i + batch], CATALOGUE):
            changes += out.changes
    return changes


@pytest.mark.parametrize("seed", [1, 3])
def test_the_same_signals_in_any_batches_publish_the_same_prices(seed: int) -> None:
    signals = _signals(seed, 3_000)
    one_by_one = _prices(signals, 1)
    assert len(one_by_one) > 100  # the category prices as it learns
    for batch in (7, 25, 3_000):
        assert _prices(signals, batch) == one_by_one
