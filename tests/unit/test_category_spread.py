"""The spread of elasticities a category's prior holds (``τ``,
:meth:`online_models.pooling.CategoryPrior.spread`, which the quality benchmark reports beside
the truth's), against the spread of the products' elasticities (pure: no services)."""

from __future__ import annotations

import numpy as np
import pytest

from online_models.pooling import TAU_SCALE, CategoryPrior


def test_the_spread_read_is_that_of_precisely_known_products() -> None:
    rng = np.random.default_rng(8)
    truths = rng.normal(-1.7, 0.9, 40)
    prior = CategoryPrior()
    for i, e in enumerate(truths):
        prior.report(f"S{i}", 1e4, 1e4 * e)
    assert prior.spread() == pytest.approx(float(np.std(truths, ddof=1)), rel=0.05)


def test_a_category_without_reports_holds_the_hyperpriors_spread() -> None:
    """No product reported: the spread is the half-normal hyperprior's root mean square."""
    assert CategoryPrior().spread() == pytest.approx(TAU_SCALE, rel=0.01)
