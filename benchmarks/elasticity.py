"""Where the elasticity error comes from -> benchmarks/results/elasticity.json.

A lean closed loop (only the pricing path of ``benchmarks.quality``): the simulated shop's
events drive the flow's ``CategoryState`` and every price change applies to the shop at once.
EVERY catalogue product is scored against the simulator's truth, not only the well-sold ones,
in each channel mode:

- ``bias`` (mean of learned − true), ``mae``, ``coverage_90`` and ``slope`` (least squares of
  learned on true elasticity: 1 when estimates follow the truth, 0 when they are all the prior);
  ``bias_weighted`` weighs each product by its posterior precision and ``z_mean`` is the mean
  error in posterior standard deviations (near 0 when the evidence is read without bias);
- the same for two counterfactual readings of the same evidence, which separate the prior from
  the likelihood: ``data_only`` (the elasticity prior made flat: what the evidence alone says)
  and ``true_prior`` (the prior set to the true mean and spread of the shop's elasticities:
  the best any category prior could do with this evidence);
- the category prior against the truth: ``prior_centre_error`` (mean over categories of the
  prior's mean − the mean true elasticity of the category's products) and ``prior_std``
  against ``true_std``;
- what the data can identify: Fisher information on the elasticity per product and the spread
  of log prices its units were sold at (exploration width), median over products.

``--smoke`` runs a tiny shop for a day (results to a temp dir).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, meta, smoke_results
from benchmarks.quality import MODES, Z90, PriceLog, Size, accepted, shop_config
from flows.steps import CategoryState, category_key, sku_signals
from online_models.elasticity import ELASTICITY
from online_models.poisson_glm import PoissonLaplace
from simulator.config import ShopConfig
from simulator.shop import DAY, Shop

FLAT_STD = 100.0  # an elasticity prior this wide says nothing


FULL = Size(days=10.0, products=150, shoppers=2_000, sessions_per_day=3_000.0)
SMOKE = Size(days=1.0, products=30, shoppers=300, sessions_per_day=600.0)


def summary(estimates: list[tuple[float, float, float]]) -> dict[str, float]:
    """Bias, MAE, slope and 90 % coverage of (mean, std, truth) triples.

    >>> s = summary([(-1.0, 0.1, -1.0), (-2.0, 0.1, -2.2), (-3.0, 0.5, -3.0)])
    >>> s["bias"], s["coverage_90"], round(s["slope"], 2), s["z_mean"]
    (0.0667, 0.6667, 0.99, 0.6667)
    """
    means = np.array([m for m, _, _ in estimates])
    stds = np.array([s for _, s, _ in estimates])
    truth = np.array([t for _, _, t in estimates])
    errors = means - truth
    spread = float(np.var(truth))
    slope = float(np.cov(means, truth, bias=True)[0, 1] / spread) if spread > 0 else math.nan
    return {
        "bias": round(float(errors.mean()), 4),
        "bias_se": round(float(errors.std(ddof=1) / math.sqrt(len(errors))), 4),
        "bias_weighted": round(float(np.average(errors, weights=1 / stds**2)), 4),
        "z_mean": round(float(np.mean(errors / stds)), 4),
        "mae": round(float(np.abs(errors).mean()), 4),
        "slope": round(slope, 4),
        "coverage_90": round(float(np.mean(np.abs(errors) <= Z90 * stds)), 4),
        "median_std": round(float(np.median(stds)), 4),
    }


def reading(glm: PoissonLaplace, mean: float, std: float) -> tuple[float, float]:
    """The elasticity posterior of ``glm``'s evidence under another prior (glm untouched)."""
    other = copy.deepcopy(glm)
    other.set_prior(ELASTICITY, mean, std)
    return other.marginal(ELASTICITY)


def run(config: ShopConfig, days: float) -> dict[str, Any]:
    shop = Shop(config)
    catalogue = {c.sku: c for c in shop.catalogue()}
    categories = {c.sku: c.category for c in catalogue.values()}
    index = {p.sku: p.index for p in shop.products}
    list_price = {p.sku: p.list_price for p in shop.products}
    truth = {p.sku: p.elasticity for p in shop.products}
    states: dict[str, CategoryState] = {}
    prices = PriceLog()
    started = time.perf_counter()
    for e in shop.events(until=shop.start + days * DAY):
        rec = accepted(e)
        if e.topic.name == "orders":
            prices.add_order(e.payload["lines"], list_price)
        for sku, value in sku_signals(rec):
            key = category_key(sku, categories)
            state = states.get(key) or states.setdefault(key, CategoryState())
            for out in state.apply(value, catalogue):
                if out.change is not None:
                    shop.prices.set(index[out.sku], out.change.price)
    loop_s = time.perf_counter() - started
    return score(states, categories, truth, prices) | {"loop_seconds": round(loop_s, 1)}


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
        "data_only": [],
        "true_prior": [],
    }
    infos, spreads, centre_errors, prior_stds, category_stds = [], [], [], [], []
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
            readings["data_only"].append((*reading(glm, true_mean, FLAT_STD), truth[sku]))
            readings["true_prior"].append((*reading(glm, true_mean, true_std), truth[sku]))
            infos.append(glm.information(ELASTICITY))
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
        "median_log_price_spread": round(float(np.median(spreads)), 4),
    }


def run_mode(mode: str, size: Size, seed: int) -> dict[str, Any]:
    return run(shop_config(mode, size, seed), size.days)


def main(argv: list[str] | None = None, runner: Callable[..., Any] = run_mode) -> Path:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny shop for a day")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default 42 7")
    parser.add_argument("--days", type=float, default=None)
    parser.add_argument("--products", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="result file")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    args = parser.parse_args(argv)
    size = SMOKE if args.smoke else FULL
    seeds: list[int] = args.seeds or ([42] if args.smoke else [42, 7])
    if args.days is not None:
        size = replace(size, days=args.days)
    if args.products is not None:
        size = replace(size, products=args.products)
    started = time.perf_counter()
    modes: dict[str, Any] = {}
    pairs = [(mode, seed) for mode in args.modes for seed in seeds]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        done = list(pool.map(runner, *zip(*[(m, size, s) for m, s in pairs], strict=True)))
    for mode in args.modes:
        runs = [r for (m, _), r in zip(pairs, done, strict=True) if m == mode]
        modes[mode] = runs[0] if len(runs) == 1 else {"seeds": runs}
        print(mode, json.dumps(modes[mode]))
    payload = {
        "modes": modes,
        "meta": meta(
            {
                "repeats": len(seeds),
                "seeds": seeds,
                "days": size.days,
                "products": size.products,
                "sessions_per_day": size.sessions_per_day,
                "seconds": round(time.perf_counter() - started, 1),
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        ),
    }
    default = (smoke_results() if args.smoke else RESULTS) / "elasticity.json"
    path: Path = args.out or default
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
