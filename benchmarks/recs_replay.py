"""The recs benchmark's split replayed in process: a discover variant scored in seconds.

The same logs, split and HR@10 as :mod:`benchmarks.recs`, but the sent interactions go
straight through the flow's own state classes (``flows.steps.ShopperState`` and
``ItemNeighbours``) in time order instead of through Kafka and the dataflow. What the flow
would have published is kept as it publishes it: an item's neighbours when ``ItemNeighbours``
says they are due, a product's popularity every ``POPULARITY_EVERY`` interactions, in a list
of the ``popularity_len`` most popular (the setting's default). Each
discover user's list is then built by ``online_models.recommender.discover`` from that, as
``api/discover.py`` builds it. Figures track the flow's within its run-to-run spread
(docs/recommendations.md); use it to compare variants, and the flow benchmark to report.

Prints one JSON line per data set; writes nothing. ``--smoke``: 50 users per log, 1 day of
the simulator.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from benchmarks.recs import SIMULATOR, SIMULATOR_DAYS, SMOKE_USERS, subset
from benchmarks.recs_data import Split, hit_and_ndcg, leave_last_out, movielens_100k, simulator_log
from flows.records import UserSignal
from flows.steps import POPULARITY_DECAY, POPULARITY_EVERY, ItemNeighbours, ShopperState
from online_models.recommender import CATEGORY_ITEMS, DISCOVER_DEPTH, discover
from online_models.similarity import POPULARITY_DAMPING, damped
from schemas.settings import Settings

POPULAR_CANDIDATES = 41  # as api/discover.py reads for k = 10
KEPT = Settings.model_fields["popularity_len"].default  # products the popularity list keeps
COUNTED = frozenset({"view", "add_to_cart", "purchase"})  # what moves a product's popularity


class Published:
    """What the flow would have published by the end of the log."""

    def __init__(self) -> None:
        self.neighbours: dict[str, dict[str, float]] = {}
        self.popularity: dict[str, float] = {}
        self._popularity: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def interaction(self, sku: str) -> None:
        self._popularity[sku] = self._popularity[sku] * POPULARITY_DECAY + 1.0
        self._counts[sku] += 1
        if self._counts[sku] % POPULARITY_EVERY == 1:
            self.popularity[sku] = self._popularity[sku]


def replay(split: Split, categories: dict[str, str]) -> dict[str, list[str]]:
    """Each discover user's top-10 after replaying ``split.sent``."""
    shoppers: dict[str, ShopperState] = {}
    items: dict[str, ItemNeighbours] = defaultdict(ItemNeighbours)
    out = Published()
    for i in split.sent:
        if i.sku in categories and i.kind in COUNTED:
            out.interaction(i.sku)
        shopper = shoppers.setdefault(i.user, ShopperState(i.user))
        signal = UserSignal(i.kind, i.t, f"s-{i.user}", (i.sku,))  # type: ignore[arg-type]
        for item, (_, counts) in shopper.apply(signal, categories).pairs:
            due = items[item].add(counts)
            if due is not None:
                out.neighbours[item] = dict(due)
    by_category: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for sku, score in sorted(out.popularity.items(), key=lambda kv: -kv[1]):
        if len(by_category[categories[sku]]) < CATEGORY_ITEMS:
            by_category[categories[sku]].append((sku, score))
    kept = dict(sorted(out.popularity.items(), key=lambda kv: -kv[1])[:KEPT])
    floor = min(kept.values(), default=1.0)
    popular = list(kept.items())[:POPULAR_CANDIDATES]
    lists = {}
    for t in split.targets:
        if t.kind != "discover":
            continue
        profile = (shoppers.get(t.user) or ShopperState(t.user)).profile(categories)
        near = {
            sku: damped(out.neighbours.get(sku, {}), kept, POPULARITY_DAMPING, floor)
            for sku in profile.recent[:DISCOVER_DEPTH]
        }
        found, _ = discover(profile, by_category, near, popular, 10)
        lists[t.user] = [sku for sku, _ in found]
    return lists


def hit_rate(split: Split, lists: dict[str, list[str]]) -> float:
    hits = [hit_and_ndcg(lists.get(t.user, []), t.target)[0] for t in split.targets]
    hits = [h for t, h in zip(split.targets, hits, strict=True) if t.kind == "discover"]
    return round(sum(hits) / len(hits), 4) if hits else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="50 users per log")
    args = parser.parse_args()
    sim_log, sim_categories = simulator_log(SIMULATOR, 1 if args.smoke else SIMULATOR_DAYS)
    ml_log, ml_categories = movielens_100k()
    for name, (events, categories) in {
        "simulator": (sim_log, sim_categories),
        "movielens_100k": (ml_log, ml_categories),
    }.items():
        split = leave_last_out(subset(events, SMOKE_USERS) if args.smoke else events)
        hr = hit_rate(split, replay(split, categories))
        print(json.dumps({"data_set": name, "hr_at_10_discover": hr}))


if __name__ == "__main__":
    main()
