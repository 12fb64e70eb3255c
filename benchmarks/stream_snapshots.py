"""What one recovery snapshot of each keyed state costs, in process (no services) -> printed.

At each epoch's end the worker pickles every key its batches touched (``KeyedState.snapshot``)
and Bytewax pickles that snapshot again into its recovery store, while the input waits
(``docs/scaling.md``, the freshness p99). This builds the keyed states the way the flow does
(the flow's own ingest, fan-out and keyed-state adapters over EVENTS seeded simulator
events in input batches of BATCH messages) and, for every category, shopper and item,
times what the worker and Bytewax pickle per key and what a recovered worker loads:

- ``category_bytes`` / ``category_pickle_ms`` / ``category_load_ms``: a category's pricing
  state (medians over the categories), ``category_products`` its products, and
  ``product_bytes`` the category's bytes per product;
- ``shopper_*`` and ``item_*``: the same per shopper and per item's neighbours (µs).

Each time is the median of PASSES passes over every key of its kind, the kinds interleaved.
Run: ``python -m benchmarks.stream_snapshots [--events N] [--passes P]``; ``--smoke`` is a
tiny size of the same path.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from collections.abc import Callable
from typing import Any, cast

import orjson
from bytewax.connectors.kafka import KafkaSourceMessage

from benchmarks.common import median
from flows.dedupe import Deduped
from flows.fanout import FanOut
from flows.ingest import Ingest
from flows.keyed import KeyedState
from flows.steps import CategoryState, ItemNeighbours, ShopperState, coalesce_pairs, sharing
from infra.runtime import restore_gc, tune_gc
from online_models.pooling import ShopPrior
from schemas.settings import Settings
from schemas.topics import INPUT_TOPICS
from simulator.config import ShopConfig
from simulator.shop import Shop

EVENTS = 30_000
BATCH = 500  # messages per input batch, as a flow behind its load gets them
PASSES = 7
K = 10  # items to buy again in a shopper's lists (what the lists hold does not matter here)


def keyed_states(n: int, batch: int = BATCH) -> dict[str, dict[str, KeyedState[Any, Any, Any]]]:
    """The keyed states of categories, shoppers and items after ``n`` simulator events."""
    s = Settings(environment="test")
    shop = Shop(ShopConfig(seed=5))
    catalogue = {item.sku: item for item in shop.catalogue()}
    categories = {sku: item.category for sku, item in catalogue.items()}
    ingest = Ingest({s.topic(t): t for t in INPUT_TOPICS}, s.event_time_policy())
    fan_out = FanOut(categories)
    level = ShopPrior()
    kinds: dict[str, dict[str, KeyedState[Any, Any, Any]]] = {
        "category": {},
        "shopper": {},
        "item": {},
    }

    def category() -> KeyedState[Any, Any, Any]:
        return KeyedState(
            lambda _key: sharing(level),
            lambda state, items: state.apply_batch(items, catalogue),
            when=lambda item: item[1].t,
            grouped=True,
        )

    def shopper() -> KeyedState[Any, Any, Any]:
        return KeyedState(
            ShopperState,
            lambda state, signals: state.apply_batch(signals, categories, K),
            when=lambda signal: signal.t,
            grouped=True,
        )

    def item() -> KeyedState[Any, Any, Any]:
        return KeyedState(lambda _key: ItemNeighbours(), ItemNeighbours.apply_batch)

    def feed(kind: str, new: Callable[[], KeyedState[Any, Any, Any]], key: str, value: Any) -> Any:
        state = kinds[kind].get(key) or kinds[kind].setdefault(key, new())
        out, _ = state.on_batch([value])
        return out

    messages = [
        KafkaSourceMessage(
            e.key.encode(), orjson.dumps(e.payload), topic=s.topic(e.topic), partition=0, offset=i
        )
        for i, e in zip(range(n), shop.events(), strict=False)
    ]
    for start in range(0, len(messages), batch):
        for ingested in ingest(messages[start : start + batch]):
            deduped = [(key, Deduped(events, 0)) for key, events in ingested.events]
            for fanned in fan_out(deduped):
                for key, value in fanned.categories:
                    feed("category", category, key, value)
                outputs = []
                for key, value in fanned.shoppers:
                    outputs.extend(feed("shopper", shopper, key, value))
                for key, value in coalesce_pairs(outputs):
                    feed("item", item, key, value)
    return kinds


def _pickle_s(state: KeyedState[Any, Any, Any]) -> float:
    """What the worker and Bytewax pickle for one key at an epoch's end."""
    started = time.perf_counter()
    pickle.dumps(state.snapshot(), protocol=pickle.HIGHEST_PROTOCOL)
    return time.perf_counter() - started


def _load_s(blob: bytes) -> float:
    started = time.perf_counter()
    pickle.loads(blob)
    return time.perf_counter() - started


def measure(n: int, passes: int) -> dict[str, float]:
    kinds = keyed_states(n)
    blobs = {
        kind: {key: pickle.dumps(s.snapshot(), pickle.HIGHEST_PROTOCOL) for key, s in keys.items()}
        for kind, keys in kinds.items()
    }
    pickling: dict[str, dict[str, list[float]]] = {kind: {} for kind in kinds}
    loading: dict[str, dict[str, list[float]]] = {kind: {} for kind in kinds}
    tune_gc()  # the garbage collector as in a flow process, its states long-lived
    try:
        for _ in range(passes):
            for kind, keys in kinds.items():
                for key, state in keys.items():
                    pickling[kind].setdefault(key, []).append(_pickle_s(state))
                    loading[kind].setdefault(key, []).append(_load_s(blobs[kind][key]))
    finally:
        restore_gc()
    out: dict[str, float] = {}
    for kind, plural, unit, scale in (
        ("category", "categories", "ms", 1e3),
        ("shopper", "shoppers", "us", 1e6),
        ("item", "items", "us", 1e6),
    ):
        out[plural] = len(kinds[kind])
        out[f"{kind}_bytes"] = median([float(len(b)) for b in blobs[kind].values()])
        out[f"{kind}_pickle_{unit}"] = median([median(t) for t in pickling[kind].values()]) * scale
        out[f"{kind}_load_{unit}"] = median([median(t) for t in loading[kind].values()]) * scale
    products = {key: len(cast(CategoryState, s.state).skus) for key, s in kinds["category"].items()}
    out["category_products"] = median([float(p) for p in products.values()])
    out["product_bytes"] = median(
        [len(blobs["category"][key]) / p for key, p in products.items() if p]
    )
    return {k: round(v, 4) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--passes", type=int, default=PASSES)
    parser.add_argument("--smoke", action="store_true", help="tiny size")
    args = parser.parse_args()
    n, passes = (5_000, 1) if args.smoke else (args.events, args.passes)
    print(json.dumps({"events": n, "passes": passes, **measure(n, passes)}, indent=2))


if __name__ == "__main__":
    main()
