"""A category's refit (:meth:`online_models.pooling.CategoryPrior.rebase`) computes its
members' terms and their sums once for the fit, the leave-one-out priors and the evidence it
reports: each must equal the same quantity fitted on its own by :func:`grid_fit`."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from online_models.pooling import TAU_SCALE, CategoryPrior, grid_fit


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_refit_agrees_with_each_fit_on_its_own(seed: int) -> None:
    rng = random.Random(seed)
    prior = CategoryPrior()
    reports = {}
    for i in range(rng.randint(3, 30)):
        information = rng.uniform(0.2, 40.0)
        reports[f"S{i}"] = (information, information * rng.gauss(-2.0, 0.6))
        prior.report(f"S{i}", *reports[f"S{i}"], refit=False)
    base_mean, base_std = rng.gauss(-1.6, 0.2), rng.uniform(0.2, 0.8)
    precision, weighted = prior.rebase(base_mean, base_std)

    info = np.array([v[0] for v in reports.values()])
    mean = np.array([v[1] for v in reports.values()])
    flat_mean, flat_std = grid_fit(info, mean, 0.0, math.inf, TAU_SCALE).mean_posterior()
    assert precision == pytest.approx(1.0 / flat_std**2, rel=1e-12)
    assert weighted == pytest.approx(flat_mean / flat_std**2, rel=1e-12)
    assert (precision, weighted) == prior.evidence()

    whole = grid_fit(info, mean, base_mean, base_std, TAU_SCALE).predictive()
    assert (prior.mean, prior.std) == pytest.approx(whole, rel=1e-12)
    for i, sku in enumerate(reports):
        others = np.arange(len(reports)) != i
        alone = grid_fit(info[others], mean[others], base_mean, base_std, TAU_SCALE)
        own = prior.for_product(sku)
        assert own == pytest.approx(alone.predictive(), rel=1e-9)
        assert all(type(v) is float for v in own)  # plain floats, as snapshots hold them


@pytest.mark.parametrize("spread", [0.3, 0.7, 1.2])
def test_the_spread_a_fit_holds_is_that_of_precisely_known_members(spread: float) -> None:
    """Sixty members known almost exactly: the fit's spread (``τ``, the posterior root mean
    square of the grid) is the spread of their values, whatever the hyperprior's scale."""
    rng = np.random.default_rng(4)
    values = rng.normal(-1.7, spread, 60)
    information = np.full(60, 1e4)
    fit = grid_fit(information, information * values, -1.5, 0.6, TAU_SCALE)
    assert fit.spread() == pytest.approx(float(np.std(values, ddof=1)), rel=0.05)
