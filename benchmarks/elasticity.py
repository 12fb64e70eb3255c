"""Where the elasticity error comes from -> benchmarks/results/elasticity.json.

A lean closed loop (only the pricing path of ``benchmarks.quality``): the simulated shop's
events drive the flow's ``CategoryState`` and every price change applies to the shop at once.
EVERY catalogue product is scored against the simulator's truth, not only the well-sold ones,
in each channel mode:

- ``bias`` (mean of learned − true), ``mae``, ``coverage_90`` and ``slope`` (least squares of
  learned on true elasticity: 1 when estimates follow the truth, 0 when they are all the prior);
  ``bias_weighted`` weighs each product by its posterior precision and ``z_mean`` is the mean
  error in posterior standard deviations (near 0 when the evidence is read without bias);
- the same for counterfactual readings of the same evidence: ``own_counted_twice`` (the
  product's prior from its whole category, its own report included: its evidence counted
  twice, once in the prior and once as the likelihood), and two that separate the prior
  from the likelihood: ``data_only`` (the elasticity prior made flat: what the evidence alone says)
  and ``true_prior`` (the prior set to the true mean and spread of the shop's elasticities:
  the best any category prior could do with this evidence);
- the category prior against the truth: ``prior_centre_error`` (mean over categories of the
  prior's mean − the mean true elasticity of the category's products) and ``prior_std``
  against ``true_std``;
- what the data can identify: Fisher information on the elasticity per product and the spread
  of log prices its units were sold at (exploration width), median over products; the MAE
  that information implies under the true prior (``mae_floor_true_prior``), and the same had
  each product's units been sold half at the guardrails' floor, half at their ceiling
  (``mae_floor_widest_test``: the most any price test could learn from this traffic);
- the shop level (categories' means drawn around a learned shop mean): ``shop_mean`` against
  ``true_mean``, ``shop_mean_evidence`` (the same with the hyperprior on the shop mean made
  flat: what the categories' evidence alone says) and ``hyperprior_pull`` (the difference);
  ``--no-shop-level`` gives each category a prior of its own products only;
- what learning costs: the loop's profit against an oracle pricing at each true demand curve
  under the same guardrails (``profit_vs_oracle``) and against fixed list prices
  (``profit_vs_static``), on the same shop.

``--smoke`` runs a tiny shop for a day (results to a temp dir).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, meta, smoke_results
from benchmarks.quality import (
    MODES,
    Z90,
    PriceLog,
    Size,
    accepted,
    mae_floor,
    reading,
    run_oracle,
    run_static,
    shop_config,
    shop_tables,
    widest_test_information,
)
from flows.steps import CategoryState, category_key, sharing, sku_signals
from online_models.elasticity import ELASTICITY
from online_models.poisson_glm import PoissonLaplace
from online_models.pooling import CategoryPool, ShopPrior
from online_models.pricing import Guardrails
from simulator.config import ShopConfig
from simulator.shop import DAY, Shop

FLAT_STD = 100.0  # an elasticity prior this wide says nothing


FULL = Size(days=10.0, products=150, shoppers=2_000, sessions_per_day=3_000.0)
SMOKE = Size(days=1.0, products=30, shoppers=300, sessions_per_day=600.0)


def summary(estimates: list[tuple[float, float, float]]) -> dict[str, float]:
    """Bias, MAE, slope and 90 % coverage of (mean, std, truth) triples.

    >>> s = summary([(-1.0, 0.1, -1.0), (-2.0, 0.1, -2.2), (-3.0, 0.5, -3.0)])
    >>> s["bias"], s["coverage_90"], round(s["slope"], 2), s["z_mean"], s["bias_weighted_se"]
    (0.0667, 0.6667, 0.99, 0.6667, 0.07)
    """
    means = np.array([m for m, _, _ in estimates])
    stds = np.array([s for _, s, _ in estimates])
    truth = np.array([t for _, _, t in estimates])
    errors = means - truth
    spread = float(np.var(truth))
    slope = float(np.cov(means, truth, bias=True)[0, 1] / spread) if spread > 0 else math.nan
    return {
        "bias": round(float(errors.mean()), 4),
        "bias_weighted": round(float(np.average(errors, weights=1 / stds**2)), 4),
        "bias_weighted_se": round(float(1 / math.sqrt(np.sum(1 / stds**2))), 4),
        "z_mean": round(float(np.mean(errors / stds)), 4),
        "mae": round(float(np.abs(errors).mean()), 4),
        "slope": round(slope, 4),
        "coverage_90": round(float(np.mean(np.abs(errors) <= Z90 * stds)), 4),
        "median_std": round(float(np.median(stds)), 4),
    }


def run(config: ShopConfig, days: float, shop_level: bool = True) -> dict[str, Any]:
    """One closed loop; with ``shop_level`` the categories share the level above them,
    otherwise each category's prior knows only its own products."""
    shop = Shop(config)
    tables = shop_tables(shop)
    truth = {p.sku: p.elasticity for p in shop.products}
    states: dict[str, CategoryState] = {}
    shared = ShopPrior()
    prices = PriceLog()
    started = time.perf_counter()
    for e in shop.events(until=shop.start + days * DAY):
        rec = accepted(e)
        if e.topic.name == "orders":
            prices.add_order(e.payload["lines"], tables.list_price)
        for sku, value in sku_signals(rec):
            key = category_key(sku, tables.categories)
            state = states.get(key)
            if state is None:
                state = states[key] = sharing(shared if shop_level else ShopPrior())
            for out in state.apply(value, tables.catalogue):
                if out.change is not None:
                    shop.prices.set(tables.index[out.sku], out.change.price)
    loop_s = time.perf_counter() - started
    scored = score(states, tables.categories, truth, prices)
    shop_mean, shop_std = shared.shop_mean()
    # what the categories' evidence alone says of the shop mean (none before any reported)
    evidence = shared.shop_mean(hyperprior=False)[0] if shop_level and shared.reports else None
    return scored | {
        "shop_level": shop_level,
        "shop_mean": round(shop_mean, 4) if shop_level else None,
        "shop_mean_std": round(shop_std, 4) if shop_level else None,
        "shop_mean_z": round((shop_mean - scored["true_mean"]) / shop_std, 4)
        if shop_level
        else None,
        "shop_mean_evidence": None if evidence is None else round(evidence, 4),
        "hyperprior_pull": None if evidence is None else round(shop_mean - evidence, 4),
        "profit": round(shop.stats.profit, 2),
        "loop_seconds": round(loop_s, 1),
    }


def profits(config: ShopConfig, days: float, tillflow: float) -> dict[str, float]:
    """Tillflow's profit against the oracle's and fixed list prices' on the same shop."""
    oracle, static = run_oracle(config, Guardrails(), days), run_static(config, days)
    return {
        "profit_oracle": round(oracle, 2),
        "profit_static": round(static, 2),
        "profit_vs_oracle": round(tillflow / oracle, 4),
        "profit_vs_static": round(tillflow / static, 4),
    }


def score(
    states: dict[str, CategoryState],
    categories: dict[str, str],
    truth: dict[str, float],
    prices: PriceLog,
) -> dict[str, Any]:
    true_mean = float(np.mean(list(truth.values())))
    true_std = float(np.std(list(truth.values())))
    readings: dict[str, list[tuple[float, float, float]]] = {
        "learned": [],
        "own_counted_twice": [],
        "data_only": [],
        "true_prior": [],
    }
    infos, spreads, centre_errors, prior_stds, category_stds = [], [], [], [], []
    widest: list[float] = []
    for key, state in states.items():
        members = [s for s, c in categories.items() if f"category:{c}" == key]
        if not members:
            continue
        centre_errors.append(state.pool.prior.mean - float(np.mean([truth[s] for s in members])))
        prior_stds.append(state.pool.prior.std)
        category_stds.append(float(np.std([truth[s] for s in members])))
        for sku in members:
            st = state.skus.get(sku)
            if st is None or st.pricer is None:
                continue
            glm = st.pricer.demand.glm
            readings["learned"].append((*st.pricer.demand.posterior(state.pool), truth[sku]))
            whole = (state.pool.prior.mean, state.pool.prior.std)  # holds the product's report
            readings["own_counted_twice"].append((*reading(glm, *whole), truth[sku]))
            readings["data_only"].append((*reading(glm, true_mean, FLAT_STD), truth[sku]))
            readings["true_prior"].append((*reading(glm, true_mean, true_std), truth[sku]))
            infos.append(glm.information(ELASTICITY))
            widest.append(widest_test_information(st.pricer))
            spreads.append(prices.spread(sku))
    return {
        **{name: summary(values) for name, values in readings.items()},
        "products_scored": len(readings["learned"]),
        "products": len(truth),
        "true_mean": round(true_mean, 4),
        "true_std": round(true_std, 4),
        "prior_centre_error": round(float(np.mean(centre_errors)), 4),
        "prior_std_mean": round(float(np.mean(prior_stds)), 4),
        "true_category_std_mean": round(float(np.mean(category_stds)), 4),
        "median_information": round(float(np.median(infos)), 4),
        "mean_information": round(float(np.mean(infos)), 4),
        "mae_floor_true_prior": round(mae_floor(infos, true_std), 4),
        "median_information_widest_test": round(float(np.median(widest)), 4),
        "mae_floor_widest_test": round(mae_floor(widest, true_std), 4),
        "median_log_price_spread": round(float(np.median(spreads)), 4),
    }


def run_mode(mode: str, size: Size, seed: int, shop_level: bool = True) -> dict[str, Any]:
    config = shop_config(mode, size, seed)
    result = run(config, size.days, shop_level)
    return result | profits(config, size.days, result["profit"])


def with_profit_ratios(before: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """A baseline's runs with their profit ratios, against this run's oracle and list-price
    profits of the same shop (the same mode and seed: they do not depend on the learner).

    >>> now = {"web": {"profit_oracle": 200.0, "profit_static": 100.0}}
    >>> with_profit_ratios({"web": {"profit": 150.0}}, now)["web"]
    {'profit': 150.0, 'profit_vs_oracle': 0.75, 'profit_vs_static': 1.5}
    """
    out: dict[str, Any] = {}
    for mode, run in before.items():
        runs = run.get("seeds", [run])
        ours = now.get(mode, {})
        ours = ours.get("seeds", [ours])
        rows = []
        for earlier, same_shop in zip(runs, ours, strict=False):
            row = dict(earlier)
            if "profit" in row and "profit_oracle" in same_shop:
                row["profit_vs_oracle"] = round(row["profit"] / same_shop["profit_oracle"], 4)
                row["profit_vs_static"] = round(row["profit"] / same_shop["profit_static"], 4)
            rows.append(row)
        out[mode] = rows[0] if "seeds" not in run else {"seeds": rows}
    return out


ACROSS_SEEDS = (
    ("learned", "bias"),
    ("learned", "coverage_90"),
    ("learned", "mae"),
    ("data_only", "bias_weighted"),
    ("hyperprior_pull",),
    ("profit_vs_oracle",),
    ("profit_vs_static",),
)


def across_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard error of a mode's figures over its seeds, each run one unit.

    Within a run the products' errors are not independent: every product's prior hangs
    from the same shop mean, whose error moves them all together, so the spread of the
    products' errors says nothing of how far a run's bias may lie from zero. Whole shops
    (seeds) are independent: their spread does.

    >>> runs = [{"learned": {"bias": b}} for b in (0.1, -0.1, 0.2, 0.0)]
    >>> across_seeds(runs)["learned.bias"]
    {'mean': 0.05, 'se': 0.0645, 'seeds': 4}
    """
    out: dict[str, Any] = {}
    for path in ACROSS_SEEDS:
        values = []
        for run in runs:
            value: Any = run
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                values.append(float(value))
        if len(values) >= 2:
            out[".".join(path)] = {
                "mean": round(float(np.mean(values)), 4),
                "se": round(float(np.std(values, ddof=1) / math.sqrt(len(values))), 4),
                "seeds": len(values),
            }
    return out


def learning_reports(
    seed: int, steps: int, categories: int = 20, products: int = 7
) -> Iterator[tuple[str, str, float, float]]:
    """(category, sku, information, information × estimate) as a shop's products learn,
    one observation at a time (a random product, ~3 units at a price within ±6 % of its
    list price, as in the simulated shop's buckets), each followed by the product's
    likelihood: the reports a flow process's categories receive."""
    rng = np.random.default_rng(seed)
    learners = {}
    for c in range(categories):
        for i in range(products):
            glm = PoissonLaplace([math.log(0.5), -1.5], [2.5, 1.0])
            learners[(f"c{c}", f"c{c}-{i}")] = (glm, rng.normal(-1.8, 0.6))
    keys = list(learners)
    for _ in range(steps):
        category, sku = keys[rng.integers(len(keys))]
        glm, truth = learners[(category, sku)]
        x = rng.uniform(-0.06, 0.06)
        glm.learn_one([1.0, x], float(rng.poisson(3.0 * math.exp(truth * x))), exposure=6.0)
        yield category, sku, *glm.likelihood(1)


def pool_refit_cost(steps: int, repeats: int = 3) -> dict[str, Any]:
    """CPU per product report to the category prior, refitting at every change (exact)
    against refitting once the reports moved (``CategoryPool.refit_change``), the two
    interleaved on the same reports; the share of reports that refit; and how far the
    lazier prior's mean (in its std) and std (relative) ever lay from the exact one's."""
    reports = list(learning_reports(3, steps))
    cpu: dict[str, list[float]] = {"exact": [], "on_change": []}
    refits: dict[str, int] = {}
    priors: dict[str, list[tuple[float, float]]] = {}
    for _ in range(repeats):
        for kind, change in (("exact", 0.0), ("on_change", CategoryPool().refit_change)):
            shop, seen, fits = ShopPrior(), [], 0
            pools: dict[str, CategoryPool] = {}
            started = time.process_time()
            for category, sku, information, weighted in reports:
                pool = pools.get(category)
                if pool is None:
                    pool = pools[category] = CategoryPool(category, shop=shop, refit_change=change)
                fitted = pool.prior.fitted
                pool.report(sku, information, weighted)
                fits += pool.prior.fitted is not fitted
                seen.append(pool.prior.for_product(sku))
            cpu[kind].append(time.process_time() - started)
            refits[kind], priors[kind] = fits, seen
    exact, lazy = np.array(priors["exact"]), np.array(priors["on_change"])
    return {
        "reports": steps,
        "us_per_report_exact": round(1e6 * float(np.median(cpu["exact"])) / steps, 1),
        "us_per_report": round(1e6 * float(np.median(cpu["on_change"])) / steps, 1),
        "refit_share_exact": round(refits["exact"] / steps, 4),
        "refit_share": round(refits["on_change"] / steps, 4),
        "max_mean_error_in_std": round(
            float(np.max(np.abs(lazy[:, 0] - exact[:, 0]) / exact[:, 1])), 4
        ),
        "max_std_error": round(float(np.max(np.abs(lazy[:, 1] / exact[:, 1] - 1))), 4),
    }


def main(argv: list[str] | None = None, runner: Callable[..., Any] = run_mode) -> Path:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny shop for a day")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default 42 7")
    parser.add_argument("--days", type=float, default=None)
    parser.add_argument("--products", type=int, default=None)
    parser.add_argument("--sessions", type=float, default=None, help="sessions per day")
    parser.add_argument("--out", type=Path, default=None, help="result file")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="an earlier result file (e.g. main's) to keep in this one as the baseline",
    )
    parser.add_argument("--before-note", default="Before", help="what the baseline is")
    parser.add_argument(
        "--no-shop-level",
        action="store_true",
        help="each category's prior alone (no level above the categories)",
    )
    args = parser.parse_args(argv)
    size = SMOKE if args.smoke else FULL
    seeds: list[int] = args.seeds or ([42] if args.smoke else [42, 7])
    if args.days is not None:
        size = replace(size, days=args.days)
    if args.products is not None:
        size = replace(size, products=args.products)
    if args.sessions is not None:
        size = replace(size, sessions_per_day=args.sessions)
    started = time.perf_counter()
    modes: dict[str, Any] = {}
    pairs = [(mode, seed) for mode in args.modes for seed in seeds]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        level = not args.no_shop_level
        runs = [(m, size, s, level) for m, s in pairs]
        done = list(pool.map(runner, *zip(*runs, strict=True)))
    for mode in args.modes:
        mode_runs = [r for (m, _), r in zip(pairs, done, strict=True) if m == mode]
        several = {"seeds": mode_runs, "across_seeds": across_seeds(mode_runs)}
        modes[mode] = mode_runs[0] if len(mode_runs) == 1 else several
        print(mode, json.dumps(modes[mode]))
    payload = {
        "modes": modes,
        "pool_refit": pool_refit_cost(2_000 if args.smoke else 17_000),
        "meta": meta(
            {
                "repeats": len(seeds),
                "seeds": seeds,
                "days": size.days,
                "products": size.products,
                "sessions_per_day": size.sessions_per_day,
                "shop_level": not args.no_shop_level,
                "seconds": round(time.perf_counter() - started, 1),
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        ),
    }
    if args.before is not None:
        earlier = json.loads(args.before.read_text())
        payload["before"] = {
            "note": args.before_note,
            "modes": with_profit_ratios(earlier["modes"], modes),
            "meta": earlier.get("meta", {}),
        }
    default = (smoke_results() if args.smoke else RESULTS) / "elasticity.json"
    path: Path = args.out or default
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
