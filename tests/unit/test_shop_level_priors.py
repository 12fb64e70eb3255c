"""The shop level fits each category's prior once per change of the other categories'
reports (:meth:`online_models.pooling.ShopPrior.for_category`): a seeded replay through the
per-category pricing step publishes the same prices, reasons and feature rows as one whose
shop level fits the prior afresh at every request."""

from __future__ import annotations

import pickle
from typing import Any

import orjson

from flows.parse import parse_message
from flows.records import Accepted
from flows.steps import CategoryState, ProductsOutput, category_key, sharing, sku_signals
from online_models.pooling import ShopPrior
from schemas.catalogue import CatalogueItem
from schemas.event_time import EventTimePolicy
from schemas.topics import INPUT_TOPICS
from simulator.config import ShopConfig
from simulator.shop import Shop

BATCH = 200  # messages per input batch


class Counted(ShopPrior):
    """A shop level that counts the priors asked for and those it fitted."""

    asked = fitted = 0

    def for_category(self, category: str) -> tuple[float, float]:
        Counted.asked += 1
        Counted.fitted += category not in self.priors
        return super().for_category(category)


class Afresh(ShopPrior):
    """A shop level that fits a category's prior at every request."""

    def for_category(self, category: str) -> tuple[float, float]:
        self.priors.clear()
        return super().for_category(category)


def _replay(shop_level: ShopPrior, n: int, seed: int) -> list[ProductsOutput]:
    """``n`` simulator events of shop ``seed`` through the category step, in input batches
    of BATCH, each category's signals applied as the flow's fan-out groups them."""
    shop = Shop(ShopConfig(seed=seed))
    catalogue: dict[str, CatalogueItem] = {item.sku: item for item in shop.catalogue()}
    categories = {sku: item.category for sku, item in catalogue.items()}
    topics = {t.name: t for t in INPUT_TOPICS}
    policy = EventTimePolicy()
    states: dict[str, CategoryState] = {}
    outputs: list[ProductsOutput] = []
    batch: dict[str, list[Any]] = {}
    for i, e in zip(range(n), shop.events(), strict=False):
        value = orjson.dumps(e.payload)
        rec = parse_message(topics, e.topic.name, 0, i, e.key.encode(), value, policy=policy)
        assert isinstance(rec, Accepted)
        for sku, signal in sku_signals(rec):
            batch.setdefault(category_key(sku, categories), []).append(signal)
        if (i + 1) % BATCH == 0 or i + 1 == n:
            for key, values in batch.items():
                state = states.get(key) or states.setdefault(key, sharing(shop_level))
                outputs.extend(state.apply_batch(values, catalogue))
            batch = {}
    return outputs


def test_remembered_category_priors_change_no_decision() -> None:
    Counted.asked = Counted.fitted = 0
    remembered = _replay(Counted(), 12_000, seed=7)
    afresh = _replay(Afresh(), 12_000, seed=7)
    changes = [c for out in remembered for c in out.changes]
    assert len(changes) > 100  # the replay re-prices, often by time
    assert any(c.reason.startswith("time:") for c in changes)
    assert changes == [c for out in afresh for c in out.changes]  # prices and reasons
    assert [out.features for out in remembered] == [out.features for out in afresh]
    assert 0 < Counted.fitted < Counted.asked / 2  # most requests found their prior fitted


def test_a_category_report_keeps_only_its_own_remembered_prior() -> None:
    shop = ShopPrior()
    for i in range(5):
        shop.report(f"c{i}", information=2.0, information_mean=2.0 * (-1.0 - i / 4))
    before = {c: shop.for_category(c) for c in ["c0", "c1", "new"]}
    shop.report("c0", information=9.0, information_mean=9.0 * -3.0)
    assert shop.for_category("c0") == before["c0"]  # its own report is left out of it
    for c in ["c1", "new"]:
        assert shop.for_category(c) != before[c]
        assert shop.for_category(c) == Afresh(reports=dict(shop.reports)).for_category(c)


def test_remembered_priors_are_not_in_the_snapshot() -> None:
    shop = ShopPrior()
    shop.report("c0", information=2.0, information_mean=-4.0)
    shop.for_category("c1")
    resumed = pickle.loads(pickle.dumps(shop))
    assert "priors" not in shop.__getstate__()
    assert resumed.priors == {}
    assert (resumed.reports, resumed.version) == (shop.reports, shop.version)
    assert resumed.for_category("c1") == shop.for_category("c1")
