"""The compact pickle of the demand learner (``PoissonLaplace.__reduce__``, what each product
of a category's snapshot holds): a restored learner is the original to the last bit, keeps
the state of its cached posterior, and a category restored mid-replay decides exactly as the
one that was never pickled."""

from __future__ import annotations

import io
import pickle
import sys
from collections import deque
from dataclasses import fields
from typing import Any

import numpy as np
import orjson

from flows.dedupe import Item, SeenIds
from flows.features import ShopperFeatures
from flows.keyed import KeyedSnapshot, KeyedState
from flows.parse import parse_message
from flows.records import Accepted, UserSignal
from flows.snapshots import pickled
from flows.steps import (
    CategoryState,
    ItemNeighbours,
    ShopperState,
    category_key,
    rejoined,
    sharing,
    sku_signals,
)
from online_models.elasticity import ElasticityConfig
from online_models.poisson_glm import PoissonLaplace
from online_models.pooling import ShopPrior
from online_models.pricer import PriceChange
from online_models.pricing import Guardrails
from online_models.recommender import DecayedWeights
from schemas.catalogue import CatalogueItem
from schemas.event_time import EventTimePolicy
from schemas.topics import INPUT_TOPICS
from simulator.config import ShopConfig
from simulator.shop import Shop

BATCH = 200  # messages per input batch
ARRAYS = ("_prior_mean", "_prior_precision", "_precision_data", "_info", "_mean", "_cov")


def _round_trip(model: PoissonLaplace) -> PoissonLaplace:
    return pickle.loads(pickle.dumps(pickled(model), protocol=pickle.HIGHEST_PROTOCOL))


def _same(a: PoissonLaplace, b: PoissonLaplace) -> None:
    assert a.n == b.n
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.shape == y.shape, name
            assert x.tobytes() == y.tobytes(), name


def _learned(n: int) -> PoissonLaplace:
    model = PoissonLaplace(prior_mean=[0.0, -1.5, 0.0], prior_std=[3.0, 1.0, 0.5])
    rng = np.random.default_rng(3)
    for _ in range(n):
        x = [1.0, float(rng.uniform(-0.3, 0.3)), float(rng.normal())]
        model.learn_one(x, int(rng.poisson(5.0)), exposure=1.0)
    return model


def test_a_restored_learner_is_the_original_to_the_last_bit() -> None:
    fresh = PoissonLaplace(prior_mean=[0.0, -1.5], prior_std=[3.0, 1.0])
    _same(fresh, _round_trip(fresh))  # nothing cached yet
    learned = _learned(50)  # the rank-one updates' posterior cached
    assert learned._mean is not None
    assert learned._cov is not None
    _same(learned, _round_trip(learned))
    learned.set_prior(1, -1.0, 0.8)  # the covariance dropped, the mean kept
    assert learned._mean is not None
    assert learned._cov is None
    _same(learned, _round_trip(learned))


def test_a_restored_learner_goes_on_as_the_original() -> None:
    original = _learned(40)
    restored = _round_trip(original)
    for model in (original, restored):  # in place on each array, then more evidence
        model.set_prior(2, 0.1, 0.4)
        model.learn_one([1.0, 0.2, -0.5], 7, exposure=1.0)
        model.absorb(2)
    _same(original, restored)
    assert restored.marginal(1) == original.marginal(1)


def _batches(n: int) -> tuple[dict[str, CatalogueItem], list[dict[str, list]]]:  # type: ignore[type-arg]
    shop = Shop(ShopConfig(seed=5))
    catalogue = {item.sku: item for item in shop.catalogue()}
    categories = {sku: item.category for sku, item in catalogue.items()}
    topics = {t.name: t for t in INPUT_TOPICS}
    policy = EventTimePolicy()
    batches: list[dict[str, list]] = [{}]  # type: ignore[type-arg]
    for i, e in zip(range(n), shop.events(), strict=False):
        rec = parse_message(
            topics, e.topic.name, 0, i, e.key.encode(), orjson.dumps(e.payload), policy=policy
        )
        assert isinstance(rec, Accepted)
        for sku, signal in sku_signals(rec):
            batches[-1].setdefault(category_key(sku, categories), []).append(signal)
        if (i + 1) % BATCH == 0:
            batches.append({})
    return catalogue, batches


def test_a_category_restored_mid_replay_decides_as_the_original() -> None:
    catalogue, batches = _batches(8_000)
    level = ShopPrior()
    states: dict[str, CategoryState] = {}
    half = len(batches) // 2
    for batch in batches[:half]:
        for key, values in batch.items():
            state = states.get(key) or states.setdefault(key, sharing(level))
            state.apply_batch(values, catalogue)
    # Both sides go on from here on a shop level rebuilt from their categories, as a
    # recovered flow does: only the pickles differ.
    level, resumed_level = ShopPrior(), ShopPrior()
    restored = {
        key: rejoined(pickle.loads(pickle.dumps(pickled(state))), resumed_level)
        for key, state in states.items()
    }
    for state in states.values():
        rejoined(state, level)
    ran, learned = [], 0
    for batch in batches[half:]:
        for key, values in batch.items():
            for side in (states, restored):
                state = side.get(key) or side.setdefault(
                    key, sharing(level if side is states else resumed_level)
                )
                ran.append(state.apply_batch(values, catalogue))
    assert ran[0::2] == ran[1::2]  # every price change, reason and feature row
    for key, state in states.items():
        for sku, product in state.skus.items():
            if product.pricer is not None:
                _same(product.pricer.demand.glm, restored[key].skus[sku].pricer.demand.glm)  # type: ignore[union-attr]
                learned += product.pricer.demand.glm.n > 0
    assert learned > 50
    assert any(c.changes for c in (out[0] for out in ran[0::2]))


def test_a_categorys_products_keep_one_shared_guardrails_and_config_through_a_snapshot() -> None:
    """Products not given their own guardrails and elasticity configuration share one object
    of each, so a category's snapshot pickles them once (pickle's memo), not once per
    product; restored, its products share them again, and a product's own guardrails stay its
    own."""
    category = _states()["category"]
    priced = [p.pricer for p in category.skus.values() if p.pricer is not None]
    assert len(priced) > 5
    own = Guardrails(max_change=0.2)
    priced[0].rails = own
    restored = pickle.loads(pickle.dumps(pickled(category)))
    pricers = [p.pricer for p in restored.skus.values() if p.pricer is not None]
    assert pricers[0].rails == own
    rails = {id(p.rails) for p in pricers[1:]}
    configs = {id(p.config) for p in pricers} | {id(p.demand.config) for p in pricers}
    assert len(rails) == 1
    assert len(configs) == 1
    assert pricers[1].rails == Guardrails()
    assert pricers[1].config == ElasticityConfig()


def _python_calls_while(pickling: object) -> set[str]:
    """The Python functions run while ``pickling`` is pickled (the C pickler calls into Python
    only for reducers written in Python)."""
    called: set[str] = set()

    def profile(frame: Any, event: str, _arg: Any) -> None:
        if event == "call":
            called.add(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        pickle.dumps(pickling)
    finally:
        sys.setprofile(None)
    return called


def _states() -> dict[str, Any]:
    """A category (one product with a published price), a shopper, an item's neighbours."""
    catalogue, batches = _batches(4_000)
    categories = {sku: item.category for sku, item in catalogue.items()}
    level = ShopPrior()
    states: dict[str, CategoryState] = {}
    for batch in batches:
        for key, values in batch.items():
            state = states.get(key) or states.setdefault(key, sharing(level))
            state.apply_batch(values, catalogue)
    category = next(iter(states.values()))
    product = next(iter(category.skus.values()))
    product.last_change = PriceChange(product.sku, 9.5, 10.0, "explore", "v1", 1.0, 3)
    shopper = ShopperState("u1")
    views = [UserSignal("view", 1.0 + i, "s1", (sku,)) for i, sku in enumerate(catalogue)]
    shopper.apply_batch(views[:30], categories, 10)
    neighbours = ItemNeighbours()
    neighbours.add([("b", 1.0), ("c", 2.0)])
    return {"category": category, "shopper": shopper, "neighbours": neighbours}


def test_epoch_snapshots_pickle_without_the_standard_library_reducers_in_python() -> None:
    """What the worker pickles at each epoch's end, while it waits: every key's snapshot and
    what Bytewax makes of it. No dataclass field listing (``_dataclass_getstate``) and no slot
    names looked up again for every deque (``copyreg._slotnames``): each ran in Python for
    every snapshot, price change and deque."""
    slow = {"_dataclass_getstate", "_slotnames", "fields"}
    for name, state in _states().items():
        logic = KeyedState(lambda _key: None, lambda _s, _v: [])
        logic.state = state
        snapshot = logic.snapshot()
        assert not _python_calls_while(state) & slow, name  # the state, pickled once
        assert not _python_calls_while(snapshot) & slow, name  # the snapshot, by Bytewax
        loaded = pickle.loads(pickle.dumps(snapshot))
        assert isinstance(loaded, KeyedSnapshot)
        assert loaded.active_at == snapshot.active_at
        assert type(loaded.state) is type(state)
        if name != "category":  # a category (numpy arrays) decides as before: the test above
            assert loaded.state == state, name
    seen = SeenIds[Item](60.0, clock=lambda: 5.0)
    seen.first_seen([Item("a"), Item("b")])
    dedupe = seen.snapshot()
    assert not _python_calls_while(dedupe) & slow
    assert pickle.loads(pickle.dumps(dedupe)) == dedupe
    assert not _python_calls_while(PriceChange("S", 9.5, 10.0, "explore", "v1", 1.0, 3)) & slow


def test_a_deque_pickles_to_the_bytes_of_its_own_reduce() -> None:
    """The reducer registered for deques (flows.snapshots) makes what ``deque.__reduce__``
    makes: a pickler with a dispatch table of its own, empty, takes the default path."""

    def default(value: object) -> bytes:
        out = io.BytesIO()
        pickler = pickle.Pickler(out, pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = {}  # type: ignore[misc]
        pickler.dump(value)
        return out.getvalue()

    shared = deque(["x"])
    for value in (
        deque(),
        deque([1.0, "a", (2, 3)]),
        deque(maxlen=3),
        deque(["b", "a"], maxlen=20),
        [shared, shared],  # one deque twice: memoised, loaded as one
    ):
        assert pickle.dumps(value, pickle.HIGHEST_PROTOCOL) == default(value)
    loaded = pickle.loads(pickle.dumps([shared, shared]))
    assert loaded[0] is loaded[1]
    assert pickle.loads(pickle.dumps(deque([1], maxlen=2))).maxlen == 2


def _shopper_with_every_field_set() -> ShopperState:
    """A shopper after real signals, each field of its state and of the dataclasses inside it
    away from its default (so a field the flat pickle left out could not load back equal)."""
    catalogue = {f"S{i}": f"cat{i % 3}" for i in range(40)}
    shopper = ShopperState("u1", interest=DecayedWeights(decay=0.98, capacity=30))
    kinds = ("view", "add_to_cart", "purchase", "wishlist")
    signals = [
        UserSignal(kinds[i % 4], 10.0 + i, f"s{i // 7}", (f"S{i % 40}", f"S{(i * 7) % 40}"))
        for i in range(60)
    ]
    shopper.apply_batch(signals, catalogue, 10)
    shopper.interest.add("S1", 0.5)  # the lazy decay's scale away from 1
    for part, defaults in (
        (shopper, ShopperState("other")),
        (shopper.features, ShopperFeatures()),
        (shopper.interest, DecayedWeights()),
    ):
        for f in fields(part):  # type: ignore[arg-type]
            assert getattr(part, f.name) != getattr(defaults, f.name), f.name
    return shopper


def test_a_shopper_restored_from_its_flat_pickle_is_the_original() -> None:
    shopper = _shopper_with_every_field_set()
    loaded = pickle.loads(pickle.dumps(pickled(shopper), protocol=pickle.HIGHEST_PROTOCOL))
    assert loaded == shopper
    assert loaded.features.recent_views.maxlen == shopper.features.recent_views.maxlen
    assert loaded.features.recent_purchases.maxlen == shopper.features.recent_purchases.maxlen
    categories = {f"S{i}": f"cat{i % 3}" for i in range(40)}
    more = [UserSignal("view", 100.0 + i, "s99", (f"S{i}",)) for i in range(5)]
    assert loaded.apply_batch(more, categories, 10) == shopper.apply_batch(more, categories, 10)
    assert loaded == shopper


def test_a_shoppers_snapshot_holds_its_values_not_its_classes_field_names() -> None:
    """The flat tuple: no dataclass's field names nor a deque's reducer in the bytes."""
    blob = pickled(_shopper_with_every_field_set()).blob
    for name in (b"recent_views", b"affinity_scale", b"session_events", b"ShopperFeatures"):
        assert name not in blob
    assert b"deque" not in blob
