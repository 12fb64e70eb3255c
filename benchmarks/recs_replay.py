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
the simulator. ``--factors``: a third source in the blend, implicit ALS
(:mod:`online_models.factors`): item factors fitted on the first ``--batch`` share of the
sent log (what a batch training would have had), each discover user folded in from their
stored profile at the end, weighted ``--factor-mix``; the line then also holds the list of
the factor source alone and the blend without it. ``--other-half``: the other half of the
users are the discover users (an independent set of targets for a variant chosen on the
first). ``--validation``: the split is made again inside what the real split sends (each
user's target is then their last positive before the real one, and the real targets are
never replayed), so that settings can be chosen on targets the benchmark does not score;
with ``--other-half`` its other half of users.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from benchmarks.recs import SIMULATOR, SIMULATOR_DAYS, SMOKE_USERS, subset
from benchmarks.recs_data import (
    Split,
    hit_and_ndcg,
    leave_last_out,
    movielens_100k,
    simulator_log,
    validation_split,
)
from flows.records import UserSignal
from flows.steps import POPULARITY_EVERY, ItemNeighbours, ShopperState
from online_models import popularity as popular
from online_models.factors import (
    WEIGHTS,
    ItemFactors,
    factor_source,
    fit_item_factors,
    profile_weights,
)
from online_models.recommender import (
    CATEGORY_ITEMS,
    DISCOVER_DEPTH,
    FACTOR_MIX,
    Profile,
    blend,
    discover,
    source_weights,
    sources,
)
from online_models.similarity import POPULARITY_DAMPING, damped
from schemas.settings import Settings

POPULAR_CANDIDATES = 41  # as api/discover.py reads for k = 10
KEPT = Settings.model_fields["popularity_len"].default  # products the popularity list keeps
STORED = Settings.model_fields["recommendations_k"].default  # buy-again items the flow stores
COUNTED = frozenset({"view", "add_to_cart", "purchase"})  # what moves a product's popularity


class Published:
    """What the flow would have published by the end of the log."""

    def __init__(self, rate: float = popular.RATE) -> None:
        self.rate = rate
        self.neighbours: dict[str, dict[str, float]] = {}
        self.popularity: dict[str, float] = {}
        self._popularity: dict[str, float] = defaultdict(lambda: popular.NONE)
        self._counts: dict[str, int] = defaultdict(int)

    def interaction(self, sku: str, t: float) -> None:
        self._popularity[sku] = popular.add(self._popularity[sku], t, self.rate)
        self._counts[sku] += 1
        if self._counts[sku] % POPULARITY_EVERY == 1:
            self.popularity[sku] = self._popularity[sku]


def replay(
    split: Split,
    categories: dict[str, str],
    factors: ItemFactors | None = None,
    factor_mix: float = FACTOR_MIX,
    rate: float = popular.RATE,
) -> dict[str, dict[str, list[str]]]:
    """Each discover user's top-10 after replaying ``split.sent``: ``{"blend": lists}``, and
    with ``factors`` also ``"factors"`` (the factor source alone) and ``"with_factors"``."""
    shoppers: dict[str, ShopperState] = {}
    items: dict[str, ItemNeighbours] = defaultdict(ItemNeighbours)
    out = Published(rate)
    for i in split.sent:
        if i.sku in categories and i.kind in COUNTED:
            out.interaction(i.sku, i.t)
        shopper = shoppers.setdefault(i.user, ShopperState(i.user))
        signal = UserSignal(i.kind, i.t, f"s-{i.user}", (i.sku,))  # type: ignore[arg-type]
        for item, (_, counts) in shopper.apply(signal, categories).pairs:
            due = items[item].add(counts)
            if due is not None:
                out.neighbours[item] = dict(due)
    listed = dict(sorted(out.popularity.items(), key=lambda kv: -kv[1]))
    kept = dict(list(listed.items())[:KEPT])
    counted = popular.counts(listed, min(kept.values(), default=0.0))  # as api/discover.py
    by_category: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for sku in listed:
        if len(by_category[categories[sku]]) < CATEGORY_ITEMS:
            by_category[categories[sku]].append((sku, counted[sku]))
    kept = {sku: counted[sku] for sku in kept}
    best_sellers = list(kept.items())[:POPULAR_CANDIDATES]
    lists: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for t in split.targets:
        if t.kind != "discover":
            continue
        profile = served_profile(shoppers.get(t.user) or ShopperState(t.user), categories)
        near = {
            sku: damped(out.neighbours.get(sku, {}), kept, POPULARITY_DAMPING)
            for sku in profile.recent[:DISCOVER_DEPTH]
        }
        found, _ = discover(profile, by_category, near, best_sellers, 10)
        lists["blend"][t.user] = [sku for sku, _ in found]
        if factors is not None:
            alone, mixed = with_factors(profile, by_category, near, factors, factor_mix)
            lists["factors"][t.user], lists["with_factors"][t.user] = alone, mixed
    return lists


def served_profile(shopper: ShopperState, categories: dict[str, str]) -> Profile:
    """The profile the API builds a shopper's discover list from: what the flow stores of
    them (``ShopperState.lists``: buy again's first ``recommendations_k`` items, the recent
    items discover starts from, every item touched, the top categories), not the shopper's
    whole state. The factor source folds the shopper in from those buy-again items, so a
    replay that folded in the state's :data:`~online_models.recommender.PROFILE_ITEMS` would
    score a list the API does not serve.
    """
    stored = shopper.lists(categories, STORED)
    return Profile(list(stored.again), list(stored.categories), list(stored.recent), stored.seen)


def with_factors(
    profile: Profile,
    by_category: dict[str, list[tuple[str, float]]],
    near: dict[str, dict[str, float]],
    factors: ItemFactors,
    mix: float,
) -> tuple[list[str], list[str]]:
    """The factor source's own top 10, and the blend of the neighbours, the category best
    sellers and the factor source (weights 1, 0.6, ``mix``), as
    :func:`online_models.recommender.blend` blends them."""
    own = factor_source(factors, profile_weights(profile.items, profile.recent), profile.seen)
    similar, by_cat = sources(profile, by_category, near)
    scores = blend([*source_weights(similar, by_cat), (mix, own)])
    top = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    alone = sorted(own.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return [sku for sku, _ in alone], [sku for sku, _ in top]


def batch_factors(split: Split, share: float, seed: int) -> ItemFactors:
    """Item factors fitted on the first ``share`` of the sent log, in time order."""
    part = split.sent[: int(len(split.sent) * share)]
    return fit_item_factors([(i.user, i.sku, WEIGHTS.get(i.kind, 1.0)) for i in part], seed)


def hit_rate(split: Split, lists: dict[str, list[str]]) -> float:
    hits = [hit_and_ndcg(lists.get(t.user, []), t.target)[0] for t in split.targets]
    hits = [h for t, h in zip(split.targets, hits, strict=True) if t.kind == "discover"]
    return round(sum(hits) / len(hits), 4) if hits else 0.0


def gained_lost(
    split: Split, before: dict[str, list[str]], after: dict[str, list[str]]
) -> list[int]:
    """Discover users whose target only ``after`` / only ``before`` has in its top 10: the
    discordant pairs of a paired comparison (McNemar), finer than two HR@10 side by side."""
    gained = lost = 0
    for t in split.targets:
        if t.kind == "discover":
            a, b = t.target in after.get(t.user, []), t.target in before.get(t.user, [])
            gained, lost = gained + (a and not b), lost + (b and not a)
    return [gained, lost]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="50 users per log")
    parser.add_argument("--factors", action="store_true", help="add the implicit ALS source")
    parser.add_argument("--factor-mix", type=float, default=FACTOR_MIX)
    parser.add_argument("--batch", type=float, default=1.0, help="share of the log fitted")
    parser.add_argument("--seed", type=int, default=0, help="ALS initialisation")
    parser.add_argument("--other-half", action="store_true", help="the other discover users")
    parser.add_argument("--validation", action="store_true", help="split what the split sends")
    args = parser.parse_args()
    sim_log, sim_categories = simulator_log(SIMULATOR, 1 if args.smoke else SIMULATOR_DAYS)
    ml_log, ml_categories = movielens_100k()
    for name, (events, categories) in {
        "simulator": (sim_log, sim_categories),
        "movielens_100k": (ml_log, ml_categories),
    }.items():
        log = subset(events, SMOKE_USERS) if args.smoke else events
        parity = 1 if args.other_half else 0
        split = (
            validation_split(log, parity) if args.validation else leave_last_out(log, parity=parity)
        )
        factors = batch_factors(split, args.batch, args.seed) if args.factors else None
        lists = replay(split, categories, factors, args.factor_mix)
        line: dict[str, object] = {
            "data_set": name,
            "hr_at_10_discover": hit_rate(split, lists["blend"]),
        }
        if factors is not None:
            line["hr_at_10_factors_alone"] = hit_rate(split, lists["factors"])
            line["hr_at_10_with_factors"] = hit_rate(split, lists["with_factors"])
            line["gained_lost"] = gained_lost(split, lists["blend"], lists["with_factors"])
        print(json.dumps(line))


if __name__ == "__main__":
    main()
