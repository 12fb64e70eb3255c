"""Model quality against the simulator's ground truth -> benchmarks/results/quality.json.

Closed loop over a shop's simulated days, in process, in each channel mode of the simulator
(``web``: views, carts and web orders; ``pos``: till orders only; ``both``): the shop's events
drive the same state classes the dataflow runs (flows.steps: CategoryState with each product's
ProductPricer, ShopperState, ItemNeighbours), and every price change is applied to the shop at
once. Three runs per mode share the seed: tillflow's prices, an oracle that knows each true
demand curve (the profit-optimal price under the same guardrails: floor, ceiling, competitor
cap), and fixed list prices.

- ``elasticity_mae``, ``elasticity_bias`` (mean signed error learned − true) and
  ``elasticity_coverage_90`` (share whose 90 % posterior interval holds the truth), over the
  products with at least the size's ``min_units`` sold (meta.runs.min_units).
- ``all_products``: the same bias, MAE and coverage over every product the loop priced,
  sold or not: the units rule selects products by an outcome, so the two side by side show
  whether the selection moves the figures.
- ``profit_vs_oracle``, ``profit_vs_static``: profit ratios of the three runs.
- ``hr_at_10`` (and ``_popularity``, ``_vs_popularity``): when a shopper arrives (the first
  event of a web session after a week of warm-up; in ``pos``, a till order, before it is
  seen), take their top-10 from tillflow's recommender and the 10 most popular products at
  that moment; does the order contain one of them? The recommender's discover part blends
  in the item factors as a shop's scheduler publishes them (:class:`ScheduledFactors`:
  refitted at every pipeline run from the shop's first hour; ``factor_fits``, and their
  CPU time ``factor_fit_cpu_s``, in each mode). A shopper with no history gets the
  popularity list itself, so ``hr_at_10_vs_popularity_known`` is the ratio over the shoppers
  who had one (``recommendation_trials_new``: those who had none). ``hr_at_10_ceiling`` (and
  ``_vs_popularity``): the same for the 10 products the shopper was likeliest to buy by the
  simulator's truth (:class:`Ceiling`), the most any list could score on these arrivals.
- ``diagnostics``: what bounds the elasticity error — the posterior std and the Fisher
  information per scored product, the spread of log prices each product was sold at, and
  ``mae_floor``: the mean absolute error a calibrated posterior of that width implies
  (std · √(2/π)). When ``elasticity_mae`` is near the floor, the data, not the estimator,
  limit it. ``true_prior_mae`` and ``true_prior_slope`` read the same evidence under a prior
  set to the true mean and spread of the shop's elasticities (the best any prior could do
  with it); ``slope`` is the learned estimates' (1: they follow the truth, 0: all the prior).
  ``mae_floor_true_prior`` is the MAE that this information implies under the true prior, and
  ``mae_floor_widest_test`` the same had each product's units been sold half at the floor and
  half at the ceiling (``median_information_widest_test``): the most any price test inside
  the guardrails could learn from this traffic, whatever it cost.
  ``share_priced_at_a_bound``: the scored products whose final price sits at the floor, the
  ceiling or the competitor cap (within a price-test leg), where price follows the bound;
  ``day_effect_std_mean``: the day-to-day variation of demand the categories learned;
  ``category_spread_mean`` the spread of elasticities within a category they learned (``τ``,
  the posterior root mean square of its fit), against ``true_category_spread_mean``, the
  sample std of the true elasticities within a category (both averaged over categories).
  Calibration of the posterior's two parts, over the scored products: ``evidence_z_var``, the
  variance of the evidence's error in its own standard deviations (what the likelihood alone
  says, the prior divided out; 1 when its width is honest), ``prior_z_var`` the same for the
  category prior each product gets, and ``truth_minus_prior_mean`` how far the scored
  products' true elasticities lie from their priors' centres on average (with weak evidence
  the posterior mean stays near the prior, so this, times the prior's weight, is the bias);
  ``prior_weight_median`` that weight (the share of a scored product's posterior precision
  that is its prior), ``scored_true_mean`` against ``true_mean`` (all products), and
  ``shop_mean_error`` (the shop level's mean elasticity − ``true_mean``) with
  ``shop_mean_std``: every category's prior hangs from the shop's mean, so its error moves
  every product's estimate together and is most of one run's bias.
- ``oracle_vs_static``: the oracle's own profit over list prices', the room any price policy
  had for ``profit_vs_static``.
- ``learner``: the cost of the pricing path per product signal (``pricing_us_per_signal``,
  CPU time) and per Laplace update; ``seconds`` and ``cpu_seconds``: a mode's wall and CPU
  time (its three runs).

The top-level keys are those of the ``both`` mode. The shop is :data:`RECORDED` (150
products, 10 days) unless ``--full`` asks for :data:`FULL` (500 products, 28 days; written to
``quality_full.json``, or ``quality_<modes>_full.json`` for some of the modes), and
``--smoke`` runs a tiny shop for a couple of days (results in a temporary folder:
benchmarks.common.smoke_results).
"""

from __future__ import annotations

import argparse
import copy
import heapq
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from batch.scheduler import parse_schedule
from benchmarks.common import Mode, meta
from flows.records import Accepted
from flows.steps import (
    CategoryState,
    ItemNeighbours,
    ShopperState,
    SkuState,
    category_key,
    sharing,
    sku_signals,
    user_signal,
)
from online_models.elasticity import ELASTICITY
from online_models.factors import (
    WEIGHTS,
    Interactions,
    ItemFactors,
    factor_source,
    fit_item_factors,
    profile_weights,
)
from online_models.poisson_glm import PoissonLaplace
from online_models.pooling import ShopPrior
from online_models.popularity import counts as popularity_counts
from online_models.pricer import ProductPricer
from online_models.pricing import Guardrails, optimal_price
from online_models.recommender import (
    CATEGORY_ITEMS,
    DISCOVER_DEPTH,
    again,
    likely_again,
    mixed,
    ranked_candidates,
    sources,
)
from online_models.similarity import POPULARITY_DAMPING, damped
from schemas.catalogue import CatalogueItem
from schemas.settings import Settings
from schemas.topics import by_name
from simulator.config import ShopConfig
from simulator.shop import DAY, Emitted, Shop

DAYS = 28
WARMUP_DAYS = 7
MIN_UNITS = 200
MODES = ("web", "pos", "both")
Z90 = 1.6449
# how often a shop's scheduler runs the pipeline whose training publishes the item factors
PIPELINE_S = parse_schedule(Settings.model_fields["batch_schedule"].default)["pipeline"]


@dataclass(frozen=True)
class Size:
    days: float = DAYS
    warmup_days: float = WARMUP_DAYS
    min_units: int = MIN_UNITS
    products: int = 500
    shoppers: int = 5_000
    sessions_per_day: float = 10_000.0


# The size the recorded figures are measured at (BENCHMARKS.md, quality.json): a mode takes
# minutes. ``--full`` runs the default shop above (500 products, 28 days): a mode takes tens
# of minutes (the point of sale) to hours (views: the hourly factor fits on their history).
RECORDED = Size(
    days=10, warmup_days=10 / 3, min_units=70, products=150, shoppers=1_500, sessions_per_day=3_000
)
FULL = Size()
SMOKE = Size(days=2, warmup_days=1, min_units=20, products=30, shoppers=300, sessions_per_day=800)


def accepted(e: Emitted) -> Accepted:
    topic = by_name(e.topic.name)
    event = topic.model.model_validate(e.payload)
    return Accepted.of(topic.name, 0, 0, e.key.encode(), b"", event)


def run_static(config: ShopConfig, days: float) -> float:
    shop = Shop(config)
    for _ in shop.events(until=shop.start + days * DAY):
        pass
    return shop.stats.profit


def run_oracle(config: ShopConfig, rails: Guardrails, days: float) -> float:
    shop = Shop(config)
    lowest: dict[str, dict[str, float]] = {}
    index = {p.sku: p for p in shop.products}

    def best(sku: str) -> float:
        p = index[sku]
        floor, ceiling = p.unit_cost * (1 + rails.min_margin), p.list_price * rails.max_markup
        price = optimal_price(p.unit_cost, p.elasticity, ceiling)
        if lowest.get(sku):
            price = min(price, min(lowest[sku].values()) * (1 + rails.max_competitor_gap))
        return round(min(max(price, floor), ceiling), 2)

    for e in shop.events(until=shop.start + days * DAY):
        if e.topic.name == "competitor-prices":
            sku = e.payload["sku"]
            lowest.setdefault(sku, {})[e.payload["competitor"]] = e.payload["price"]
            shop.prices.set(index[sku].index, best(sku))
    return shop.stats.profit


@dataclass
class PriceLog:
    """Units sold per product at each log price (for the spread of prices it learned from)."""

    units: dict[str, list[tuple[float, int]]] = field(default_factory=dict)

    def add(self, sku: str, log_price: float, quantity: int) -> None:
        self.units.setdefault(sku, []).append((log_price, quantity))

    def add_order(self, lines: list[dict[str, Any]], list_price: dict[str, float]) -> None:
        for line in lines:
            sku = line["sku"]
            self.add(sku, math.log(line["unit_price"] / list_price[sku]), line["quantity"])

    def spread(self, sku: str) -> float:
        pairs = self.units.get(sku, [])
        weights = np.array([q for _, q in pairs], dtype=float)
        if weights.sum() <= 0:
            return 0.0
        x = np.array([p for p, _ in pairs])
        mean = float(np.average(x, weights=weights))
        return math.sqrt(float(np.average((x - mean) ** 2, weights=weights)))


@dataclass(frozen=True)
class Ceiling:
    """The list that knows the simulator's truth: the ``n`` products a shopper is likeliest
    to buy at a moment, by their true chance of looking at each (category taste × latent
    taste × popularity) × each product's true chance of being carted when looked at, at its
    current price and weekday (the day's demand noise left out: it is drawn as the shop runs,
    and reading it early would move the shop's random stream). Checking out is one chance for
    every product, so it does not change the order. Its hit rate is what bounds the
    recommender's, as ``mae_floor`` bounds the elasticity error: the lists estimate these
    chances from each shopper's few dozen interactions.
    """

    shop: Shop
    view: np.ndarray  # (shoppers, products): P(product | the shopper looks at one)
    shopper: dict[str, int]  # user id -> row of view
    conversion: np.ndarray
    list_price: np.ndarray
    elasticity: np.ndarray
    seasonality: np.ndarray  # (products, 7)

    @classmethod
    def of(cls, shop: Shop) -> Ceiling:
        products = shop.products
        return cls(
            shop,
            shop.shoppers.view_probabilities(),
            {user: u for u, user in enumerate(shop.user_ids)},
            np.array([p.conversion for p in products]),
            np.array([p.list_price for p in products]),
            np.array([p.elasticity for p in products]),
            np.array([p.seasonality for p in products]),
        )

    def buying(self, user: str, t: float) -> np.ndarray:
        """Each product's chance, up to a common factor, that ``user`` buys it at ``t``."""
        shop = self.shop
        price = np.asarray(shop.prices.current)
        demand = (price / self.list_price) ** self.elasticity * self.seasonality[:, shop.weekday(t)]
        cart = np.minimum(shop.config.max_cart_probability, self.conversion * demand)
        chances: np.ndarray = self.view[self.shopper[user]] * cart
        return chances

    def best(self, user: str, t: float, n: int = 10) -> set[str]:
        chances = self.buying(user, t)
        top = np.argsort(-chances, kind="stable")[:n]
        return {self.shop.products[j].sku for j in top.tolist()}


@dataclass
class ScheduledFactors:
    """The item factors as a shop's scheduler publishes them for its discover lists: the
    pipeline runs every ``every`` seconds, and its training (``batch.training.run_training``)
    fits the factors on every interaction in silver by then, weighted as ``batch/factors.py``
    weighs them, before the models that wait for days of history; the first run to publish
    any is the first after ``first`` (the shop's opening). The API folds each shopper into the
    factors last published.

    The shopper × product weights are kept as growing columns of codes, and each fit orders
    them as the batch's query does (by shopper, then product) with NumPy: a full-size shop
    refits ~670 times on up to a million pairs, which sorting them as Python tuples made a
    sixth of the loop's time."""

    first: float
    every: float = PIPELINE_S
    items: ItemFactors | None = None
    fits: int = 0
    fit_cpu_s: float = 0.0
    due: float = field(init=False)
    _shoppers: dict[str, int] = field(default_factory=dict)
    _skus: dict[str, int] = field(default_factory=dict)
    _pairs: dict[tuple[int, int], int] = field(default_factory=dict)  # -> position in columns
    _rows: list[int] = field(default_factory=list)
    _cols: list[int] = field(default_factory=list)
    _weights: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.due = self.first + self.every

    def add(self, e: Emitted) -> None:
        """What the event adds to the shopper × product weights the next fit reads."""
        if e.topic.name == "orders":
            for line in e.payload["lines"]:
                self._add(e.payload["user_id"], line["sku"], WEIGHTS["purchase"])
        elif e.topic.name == "user-activity":
            action, sku = e.payload["action"], e.payload["sku"]
            if sku is not None and action != "purchase" and action in WEIGHTS:
                self._add(e.payload["user_id"], sku, WEIGHTS[action])

    def _add(self, user: str, sku: str, weight: float) -> None:
        row = self._shoppers.setdefault(user, len(self._shoppers))
        col = self._skus.setdefault(sku, len(self._skus))
        at = self._pairs.setdefault((row, col), len(self._weights))
        if at == len(self._weights):
            self._rows.append(row)
            self._cols.append(col)
            self._weights.append(weight)
        else:
            self._weights[at] += weight

    def interactions(self) -> Interactions:
        """The weights so far as the batch reads them: pairs ordered by shopper, then product
        (``ORDER BY user_id, sku``), codes in order of first appearance."""
        shoppers, skus = sorted(self._shoppers), sorted(self._skus)
        rows = _ranks(list(self._shoppers))[np.asarray(self._rows, dtype=np.int64)]
        cols = _ranks(list(self._skus))[np.asarray(self._cols, dtype=np.int64)]
        order = np.lexsort((cols, rows))
        weights = np.asarray(self._weights)[order]
        return Interactions.in_order(shoppers, skus, rows[order], cols[order], weights)

    def at(self, t: float) -> ItemFactors | None:
        """The factors published by ``t``: refitted on what was added so far when a run fell
        due (the events of one moment are added after it; runs that fell due with nothing
        new between them would fit the same factors, so one fit stands for them)."""
        if t >= self.due:
            self.due += self.every * (1 + (t - self.due) // self.every)
            if self._weights:
                started = time.process_time()
                self.items = fit_item_factors(self.interactions())
                self.fit_cpu_s += time.process_time() - started
                self.fits += 1
        return self.items


def _ranks(names: list[str]) -> np.ndarray:
    """Each name's position in the sorted names (names are distinct; NumPy orders strings by
    code point, as ``sorted`` does).

    >>> _ranks(["tea", "jam", "milk"]).tolist()
    [2, 0, 1]
    """
    ranks = np.empty(len(names), dtype=np.int64)
    ranks[np.argsort(np.array(names, dtype=str), kind="stable")] = np.arange(len(names))
    return ranks


def run_tillflow(config: ShopConfig, size: Size) -> dict[str, Any]:
    shop = Shop(config)
    tables = shop_tables(shop)
    catalogue, categories, index = tables.catalogue, tables.categories, tables.index
    list_price = tables.list_price
    states: dict[str, CategoryState] = {}
    shop_level = ShopPrior()  # the level above the categories, shared as in a flow process
    shoppers: dict[str, ShopperState] = {}
    items: dict[str, ItemNeighbours] = {}
    hits = hits_popular = hits_ceiling = trials = 0
    ceiling = Ceiling.of(shop)
    new = hits_known = hits_popular_known = 0  # arrivals without / with a history
    warm = shop.start + size.warmup_days * DAY
    prices = PriceLog()
    signals = 0
    pricing_s = 0.0

    known: dict[str, SkuState] = {}  # every product's state, whichever category holds it
    sku_state = known.get

    by_category: dict[str, list[str]] = {}
    for sku, cat in categories.items():
        by_category.setdefault(cat, []).append(sku)
    # user -> (ours, most popular, the ceiling's, had a history) on arrival
    shown: dict[str, tuple[set[str], set[str], set[str], bool]] = {}
    sessions: dict[str, str] = {}
    factors = ScheduledFactors(shop.start)

    def most_popular(candidates: list[str], n: int, reference: float) -> list[tuple[str, float]]:
        """The ``n`` most popular of ``candidates``, counted relative to ``reference``."""
        scored = [(s, st.popularity) for s in candidates if (st := known.get(s)) is not None]
        best = dict(heapq.nlargest(n, scored, key=lambda kv: kv[1]))
        return list(popularity_counts(best, reference).items())

    neighbours: dict[str, dict[str, float]] = {}  # an item's similar(), until its next pair

    def neighbours_of(item: str) -> dict[str, float]:
        near = neighbours.get(item)
        if near is None:
            near = neighbours[item] = dict(items[item].similarity.similar())
        return near

    def arrive(user: str, t: float) -> None:
        profile = (shoppers.get(user) or ShopperState(user)).profile(categories)
        # counts relative to the least popular product, as the API counts them
        least = min((st.popularity for st in known.values() if st.interactions), default=0.0)
        top = most_popular(list(categories), 20, least)
        best = {
            c: most_popular(by_category[c], CATEGORY_ITEMS, least) for c, _ in profile.categories
        }
        recent = profile.recent[:DISCOVER_DEPTH]
        similar = {s: neighbours_of(s) for s in recent if s in items}
        scored = {o: st.popularity for n in similar.values() for o in n if (st := sku_state(o))}
        pop = popularity_counts(scored, least)
        near = {s: damped(n, pop, POPULARITY_DAMPING) for s, n in similar.items()}
        weights = profile_weights(profile.items, profile.recent)
        factored = factor_source(factors.items, weights, profile.seen) if factors.items else {}
        neighbouring, from_categories = sources(profile, best, near)
        found = ranked_candidates(profile, neighbouring, from_categories, top, 10, factored)
        own = again(profile, 10)  # as the flow stores it, ordered as the API serves it
        scores = {s: st.popularity for s, _ in own if (st := sku_state(s)) is not None}
        listed = [(s, v) for s, v, _ in found]
        ranked = mixed(likely_again(own, popularity_counts(scores, least)), listed, 10)
        shown[user] = (
            {s for s, _ in ranked},
            {s for s, _ in top[:10]},
            ceiling.best(user, t),
            bool(profile.items),
        )

    for e in shop.events(until=shop.start + size.days * DAY):
        factors.at(e.time)
        rec = accepted(e)
        if e.topic.name == "orders":
            user = e.payload["user_id"]
            if config.channels == "pos" and e.time >= warm:
                arrive(user, e.time)
            if user in shown:
                bought = {line["sku"] for line in e.payload["lines"]}
                ours, popular, best, had_history = shown.pop(user)
                trials += 1
                hits += bool(bought & ours)
                hits_popular += bool(bought & popular)
                hits_ceiling += bool(bought & best)
                new += not had_history
                hits_known += had_history and bool(bought & ours)
                hits_popular_known += had_history and bool(bought & popular)
            prices.add_order(e.payload["lines"], list_price)
        if e.topic.name == "user-activity" and e.time >= warm:
            user, session = e.payload["user_id"], e.payload["session_id"]
            if sessions.get(user) != session:  # a shopper arrives: what would we show?
                sessions[user] = session
                arrive(user, e.time)
        started = time.process_time()
        for sku, value in sku_signals(rec):
            key = category_key(sku, categories)
            state = states.get(key) or states.setdefault(key, sharing(shop_level))
            for out in state.apply(value, catalogue):
                if out.change is not None:
                    shop.prices.set(index[out.sku], out.change.price)
            if sku not in known:
                known[sku] = state.skus[sku]
            signals += 1
        pricing_s += time.process_time() - started
        routed = user_signal(rec)
        if routed is not None:
            user, (_, signal) = routed
            shopper = shoppers.get(user) or shoppers.setdefault(user, ShopperState(user))
            for item, (_, counts) in shopper.apply(signal, categories).pairs:
                items.setdefault(item, ItemNeighbours()).add(counts)
                neighbours.pop(item, None)  # its counts moved
        factors.add(e)
    return _score(shop, states, shop_level, prices, size) | {
        "profit": shop.stats.profit,
        "hr_at_10": hits / trials if trials else 0.0,
        "hr_at_10_popularity": hits_popular / trials if trials else 0.0,
        "hr_at_10_ceiling": hits_ceiling / trials if trials else 0.0,
        "recommendation_trials": trials,
        "recommendation_trials_new": new,
        "hr_at_10_known": hits_known / (trials - new) if trials > new else 0.0,
        "hr_at_10_popularity_known": hits_popular_known / (trials - new) if trials > new else 0.0,
        "factor_fits": factors.fits,
        "factor_fit_cpu_s": factors.fit_cpu_s,
        "pricing_signals": signals,
        "pricing_us_per_signal": 1e6 * pricing_s / max(1, signals),
    }


def _score(
    shop: Shop,
    states: dict[str, CategoryState],
    shop_level: ShopPrior,
    prices: PriceLog,
    size: Size,
) -> dict[str, Any]:
    truth = {p.sku: p.elasticity for p in shop.products}
    sold: dict[str, int] = {}
    for purchases in shop.purchases.values():
        for pu in purchases:
            sold[pu.sku] = sold.get(pu.sku, 0) + pu.quantity
    errors, stds, infos, spreads, changes = [], [], [], [], 0
    true_mean, true_std = float(np.mean(list(truth.values()))), float(np.std(list(truth.values())))
    learned, ideal, scored = [], [], []  # posterior means: learned, under the true prior
    widest: list[float] = []
    bounded = []  # scored products priced at a guardrail (within one price-test leg of it)
    z_evidence, z_prior, prior_offset = [], [], []  # calibration of each part of the posterior
    every: list[tuple[float, float]] = []  # (error, std) of every product, scored or not
    prior_weights = []  # the share of each scored product's posterior precision that is prior
    for state in states.values():
        for sku, st in state.skus.items():
            if st.pricer is None:
                continue
            changes += st.pricer.changes
            mean, std = st.pricer.demand.posterior(st.pool)
            error = mean - truth[sku]
            every.append((error, std))
            if sold.get(sku, 0) < size.min_units:
                continue
            z_evidence.append(evidence_z(st.pricer.demand.glm, truth[sku]))
            prior_mean, prior_std = st.pool.prior.for_product(sku)
            z_prior.append((prior_mean - truth[sku]) / prior_std)
            prior_offset.append(truth[sku] - prior_mean)
            prior_weights.append(std**2 / prior_std**2)
            errors.append(error)
            stds.append(std)
            infos.append(st.pricer.demand.glm.information(ELASTICITY))
            spreads.append(prices.spread(sku))
            widest.append(widest_test_information(st.pricer))
            bounded.append(at_bound(st.pricer))
            learned.append(mean)
            ideal.append(reading(st.pricer.demand.glm, true_mean, true_std)[0])
            scored.append(truth[sku])
    if not errors:
        errors, stds, infos, spreads = [math.nan], [math.nan], [0.0], [0.0]
    shop_mean, shop_std = shop_level.shop_mean() if shop_level.reports else (math.nan, math.nan)
    return {
        **accuracy(list(zip(errors, stds, strict=True))),
        "products_scored": len(errors),
        "price_changes": changes,
        "diagnostics": {
            "median_elasticity_std": float(np.median(stds)),
            "mae_floor": float(np.mean(stds) * math.sqrt(2 / math.pi)),
            "median_information": float(np.median(infos)),
            "median_log_price_spread": float(np.median(spreads)),
            "category_prior_std_mean": float(np.mean([s.pool.prior.std for s in states.values()])),
            "category_spread_mean": float(
                np.mean([s.pool.prior.spread() for s in states.values()])
            ),
            "true_category_spread_mean": true_spread(truth, states),
            "slope": slope(learned, scored),
            "true_prior_mae": float(np.mean(np.abs(np.subtract(ideal, scored)))) if ideal else 0.0,
            "true_prior_slope": slope(ideal, scored),
            "median_information_widest_test": float(np.median(widest)) if widest else 0.0,
            "mae_floor_true_prior": mae_floor(infos, true_std),
            "mae_floor_widest_test": mae_floor(widest, true_std) if widest else math.nan,
            "share_priced_at_a_bound": float(np.mean(bounded)) if bounded else 0.0,
            "day_effect_std_mean": float(
                np.mean([math.sqrt(s.pool.day_variance) for s in states.values()])
            ),
            "evidence_z_var": _variance(z_evidence),
            "prior_z_var": _variance(z_prior),
            "truth_minus_prior_mean": float(np.mean(prior_offset)) if prior_offset else math.nan,
            "prior_weight_median": float(np.median(prior_weights)) if prior_weights else math.nan,
            "scored_true_mean": float(np.mean(scored)) if scored else math.nan,
            "true_mean": true_mean,
            "shop_mean_error": shop_mean - true_mean,
            "shop_mean_std": shop_std,
        },
        "all_products": all_products(every),
    }


def true_spread(truth: dict[str, float], states: dict[str, CategoryState]) -> float:
    """The spread of the true elasticities within a category (their sample std), averaged
    over the categories of more than one product: what ``category_spread_mean`` learns."""
    spreads = [
        float(np.std([truth[sku] for sku in state.skus], ddof=1))
        for state in states.values()
        if len(state.skus) > 1
    ]
    return float(np.mean(spreads)) if spreads else math.nan


def all_products(every: list[tuple[float, float]]) -> dict[str, float]:
    """Bias, MAE and 90 % coverage over every product the loop priced, sold or not, from
    (error, std) pairs: beside the scored products' figures, whether the units rule selects.

    >>> all_products([(0.2, 0.1), (-0.1, 0.1)])["elasticity_bias"]
    0.05
    """
    return {"products": len(every), **accuracy(every)}


def accuracy(pairs: list[tuple[float, float]]) -> dict[str, float]:
    """Bias, MAE and the share of 90 % intervals holding the truth, from (error, std) pairs
    (NaN, NaN and 0 for none)."""
    errors = np.array([e for e, _ in pairs]) if pairs else np.array([math.nan])
    stds = np.array([s for _, s in pairs]) if pairs else np.array([math.nan])
    return {
        "elasticity_mae": float(np.abs(errors).mean()),
        "elasticity_bias": float(errors.mean()),
        "elasticity_coverage_90": float(np.mean(np.abs(errors) <= Z90 * stds)),
    }


AT_BOUND = math.log(1.1)  # one price-test leg either side of a bound: priced at it


def at_bound(pricer: ProductPricer) -> bool:
    """Whether the product's price sits at a guardrail (the floor, the ceiling or the
    competitor cap), within the price test's legs: there its price follows the bound, not the
    elasticity, and its test can only move away from it."""
    competitor = pricer.demand.competitor  # log(lowest competitor / list price), 0: unknown
    floor, _, upper = pricer.rails.bounds(
        pricer.unit_cost,
        pricer.list_price,
        pricer.list_price * math.exp(competitor) if competitor else None,
    )
    price = pricer.price
    return math.log(price / floor) < AT_BOUND or math.log(upper / price) < AT_BOUND


def evidence_z(glm: PoissonLaplace, truth: float) -> float:
    """The error of what a product's evidence alone says of its elasticity (its likelihood,
    the prior divided out), in the likelihood's standard deviations: over many products its
    variance is 1 when the evidence is as precise as it claims, < 1 when it claims too little.

    The same as reading the evidence under a flat prior:

    >>> glm = PoissonLaplace([0.0, 0.0, -1.5], [3.0, 3.0, 1.0])
    >>> for x, units in [(-0.2, 30), (0.0, 20), (0.2, 12)] * 20:
    ...     _ = glm.learn_one([1.0, 0.0, x], units, exposure=1.0)
    >>> flat = copy.deepcopy(glm)
    >>> flat.set_prior(ELASTICITY, 0.0, 1e4)
    >>> mean, std = flat.marginal(ELASTICITY)
    >>> bool(abs(evidence_z(glm, -2.0) - (mean + 2.0) / std) < 1e-3)
    True
    """
    information, weighted = glm.likelihood(ELASTICITY)
    if information <= 0.0:
        return math.nan
    return (weighted / information - truth) * math.sqrt(information)


def _variance(values: list[float]) -> float:
    """Variance of the finite values (NaN when fewer than two).

    >>> _variance([1.0, -1.0, math.nan]), math.isnan(_variance([1.0]))
    (2.0, True)
    """
    finite = [v for v in values if math.isfinite(v)]
    return float(np.var(finite, ddof=1)) if len(finite) > 1 else math.nan


def widest_test_information(pricer: ProductPricer) -> float:
    """About the most information on its elasticity a product's units could have given: half
    of them sold at the guardrails' floor, half at the ceiling (information = units ×
    variance of log price). The widest price test allowed, at a profit cost no shop takes."""
    rails = pricer.rails
    floor = pricer.unit_cost * (1 + rails.min_margin)
    band = math.log(max(floor, pricer.list_price * rails.max_markup) / floor)
    return pricer.demand.units * (band / 2) ** 2


def mae_floor(information: list[float], prior_std: float) -> float:
    """The MAE calibrated posteriors imply, with this much information per product and the
    true spread of elasticities as the prior: mean posterior std × √(2/π).

    >>> round(mae_floor([0.0], 0.7), 3), round(mae_floor([100.0], 0.7), 3)
    (0.559, 0.079)
    """
    stds = [1 / math.sqrt(i + 1 / prior_std**2) for i in information]
    return float(np.mean(stds)) * math.sqrt(2 / math.pi)


def reading(glm: PoissonLaplace, mean: float, std: float) -> tuple[float, float]:
    """The elasticity posterior of ``glm``'s evidence under another prior (glm untouched)."""
    other = copy.deepcopy(glm)
    other.set_prior(ELASTICITY, mean, std)
    return other.marginal(ELASTICITY)


def slope(estimates: list[float], truth: list[float]) -> float:
    """Least squares slope of estimates on the truth: 1 when estimates follow it, 0 when
    they all sit at a prior.

    >>> slope([-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0]), slope([-2.0, -2.0], [-1.0, -3.0])
    (1.0, 0.0)
    """
    spread = float(np.var(truth)) if len(truth) > 1 else 0.0
    if spread <= 0:
        return math.nan
    return float(np.cov(estimates, truth, bias=True)[0, 1] / spread)


def learner_update_cost(n: int = 20_000) -> float:
    """Microseconds per Laplace update of one product's posterior (4 coefficients)."""
    rng = np.random.default_rng(0)
    model = PoissonLaplace([math.log(0.1), 0.0, -1.5, 0.0], [2.5, 2.5, 1.0, 0.5])
    xs = rng.uniform(-0.2, 0.2, size=n)
    counts = rng.poisson(6.0 * np.exp(-2.0 * xs))
    started = time.perf_counter()
    for x, y in zip(xs, counts, strict=True):
        model.learn_one([1.0, 0.0, float(x), 0.0], float(y), 60.0)
    return 1e6 * (time.perf_counter() - started) / n


@dataclass(frozen=True)
class ShopTables:
    """What the pricing loop looks up about a simulated shop's products, by sku."""

    catalogue: dict[str, CatalogueItem]
    categories: dict[str, str]
    index: dict[str, int]  # position in the shop's price table
    list_price: dict[str, float]


def shop_tables(shop: Shop) -> ShopTables:
    """The catalogue the flow would load, each product's category, price index, list price."""
    catalogue = {c.sku: c for c in shop.catalogue()}
    return ShopTables(
        catalogue=catalogue,
        categories={c.sku: c.category for c in catalogue.values()},
        index={p.sku: p.index for p in shop.products},
        list_price={p.sku: p.list_price for p in shop.products},
    )


def shop_config(mode: str, size: Size, seed: int) -> ShopConfig:
    """The simulated shop of one run: ``size``'s traffic on the web or at the tills."""
    return ShopConfig(
        seed=seed,
        channels=mode,
        products=size.products,
        shoppers=size.shoppers,
        sessions_per_day=size.sessions_per_day,
        till_visits_per_day=size.sessions_per_day,
    )


def run_mode(mode: str, size: Size, seed: int) -> dict[str, Any]:
    config = shop_config(mode, size, seed)
    started, cpu = time.perf_counter(), time.process_time()
    tillflow = run_tillflow(config, size)
    oracle = run_oracle(config, Guardrails(), size.days)
    static = run_static(config, size.days)
    hr, hr_pop = tillflow["hr_at_10"], tillflow["hr_at_10_popularity"]
    result = {
        "elasticity_mae": tillflow["elasticity_mae"],
        "elasticity_bias": tillflow["elasticity_bias"],
        "elasticity_coverage_90": tillflow["elasticity_coverage_90"],
        "profit_tillflow": tillflow["profit"],
        "profit_oracle": oracle,
        "profit_static": static,
        "profit_vs_oracle": tillflow["profit"] / oracle,
        "profit_vs_static": tillflow["profit"] / static,
        "oracle_vs_static": oracle / static,  # the most a price policy had room for here
        "hr_at_10": hr,
        "hr_at_10_popularity": hr_pop,
        "hr_at_10_vs_popularity": hr / hr_pop if hr_pop else 0.0,
        "hr_at_10_ceiling": tillflow["hr_at_10_ceiling"],
        "hr_at_10_ceiling_vs_popularity": (
            tillflow["hr_at_10_ceiling"] / hr_pop if hr_pop else 0.0
        ),
        "products_scored": tillflow["products_scored"],
        "all_products": tillflow["all_products"],
        "price_changes": tillflow["price_changes"],
        "recommendation_trials": tillflow["recommendation_trials"],
        "recommendation_trials_new": tillflow["recommendation_trials_new"],
        "hr_at_10_vs_popularity_known": (
            tillflow["hr_at_10_known"] / tillflow["hr_at_10_popularity_known"]
            if tillflow["hr_at_10_popularity_known"]
            else 0.0
        ),
        "factor_fits": tillflow["factor_fits"],
        "factor_fit_cpu_s": tillflow["factor_fit_cpu_s"],
        "pricing_us_per_signal": tillflow["pricing_us_per_signal"],
        "diagnostics": tillflow["diagnostics"],
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
    }
    print(mode, json.dumps(_rounded(result)))
    return result


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


TOP_LEVEL = (
    "elasticity_mae",
    "profit_tillflow",
    "profit_oracle",
    "profit_static",
    "profit_vs_oracle",
    "profit_vs_static",
    "hr_at_10",
    "hr_at_10_popularity",
    "hr_at_10_vs_popularity",
)


def _payload(
    modes: dict[str, dict[str, Any]],
    learner: dict[str, float],
    size: Size,
    seed: int,
    seconds: float,
) -> dict[str, Any]:
    top = modes.get("both") or next(iter(modes.values()))
    return {
        **{k: top[k] for k in TOP_LEVEL},
        "modes": modes,
        "learner": learner,
        "meta": meta(
            {
                "repeats": 1,
                "days": size.days,
                "warmup_days": size.warmup_days,
                "seed": seed,
                "products": size.products,
                "sessions_per_day": size.sessions_per_day,
                "min_units": size.min_units,
                "top_level_mode": "both" if "both" in modes else next(iter(modes)),
                "seconds": seconds,
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        ),
    }


def result_name(modes: list[str], full: bool) -> str:
    """The results file of a run: the recorded size's ``quality.json``; a full-size run's
    beside it, named by its modes when it ran some of them, so no run replaces another's.

    >>> result_name(["web", "pos", "both"], full=False), result_name(["both", "pos"], full=True)
    ('quality.json', 'quality_both_pos_full.json')
    >>> result_name(list(MODES), full=True)
    'quality_full.json'
    """
    if not full:
        return "quality.json"
    some = "" if set(modes) == set(MODES) else "_" + "_".join(modes)
    return f"quality{some}_full.json"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny shop for a few days")
    parser.add_argument("--full", action="store_true", help="500 products for 28 days (hours)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--days", type=float, default=None, help="simulated days per run")
    parser.add_argument("--products", type=int, default=None, help="catalogue size")
    parser.add_argument("--sessions", type=float, default=None, help="sessions per day")
    parser.add_argument("--min-units", type=int, default=None, help="units to be scored")
    parser.add_argument("--jobs", type=int, default=1, help="modes run in parallel processes")
    args = parser.parse_args(argv)
    size = SMOKE if args.smoke else FULL if args.full else RECORDED
    if args.days is not None:
        size = replace(size, days=args.days, warmup_days=min(size.warmup_days, args.days / 3))
    if args.products is not None:
        size = replace(size, products=args.products, shoppers=10 * args.products)
    if args.sessions is not None:
        size = replace(size, sessions_per_day=args.sessions)
    if args.min_units is not None:
        size = replace(size, min_units=args.min_units)
    started = time.perf_counter()
    results = Mode(smoke=args.smoke).results
    results.mkdir(parents=True, exist_ok=True)
    path = results / result_name(args.modes, full=args.full and not args.smoke)
    learner = {"us_per_update": learner_update_cost(2_000 if args.smoke else 20_000)}
    modes: dict[str, dict[str, Any]] = {}
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = {pool.submit(run_mode, m, size, args.seed): m for m in args.modes}
        for done in as_completed(runs):
            # written as each mode finishes: a long run keeps the modes it completed
            modes[runs[done]] = done.result()
            ordered = {m: modes[m] for m in args.modes if m in modes}
            payload = _payload(ordered, learner, size, args.seed, time.perf_counter() - started)
            path.write_text(json.dumps(_rounded(payload), indent=2) + "\n")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
