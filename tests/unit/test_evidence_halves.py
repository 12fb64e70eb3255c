"""A product's evidence in two halves (odd and even days) and the category spread read from
them (:meth:`online_models.poisson_glm.PoissonLaplace.half_likelihood`,
:func:`online_models.pooling.halves_spread_weights`), and the day's draw that prices a
product's decisions (:meth:`online_models.pricer.ProductPricer.draw`). Pure: no services."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from online_models.poisson_glm import PoissonLaplace
from online_models.pooling import CategoryPrior, halves_spread_weights
from online_models.pricer import ProductPricer

PRIOR = ([0.0, -1.5, 0.0], [3.0, 1.0, 0.3])  # level, elasticity, the day's effect


def _day(model: PoissonLaplace, rng: np.random.Generator, day: int, e: float) -> None:
    """One day of buckets at two prices, with the day's own level of demand; the day's
    effect is integrated out when the day ends, as the demand model does."""
    effect = rng.normal(0.0, 0.2)
    for x in (-0.1, 0.1) * 6:
        units = rng.poisson(8.0 * math.exp(e * x + effect))
        model.learn_one([1.0, x, 1.0], float(units), 1.0, odd=day % 2 == 1)
    model.absorb(2, vague=(0,), odd=day % 2 == 1)


def test_each_half_holds_what_its_days_alone_say() -> None:
    """The halves' readings are those of a model fed only that half's days (up to the
    points the Laplace steps were taken at), and together they hold the whole."""
    rng = np.random.default_rng(4)
    whole, odd_only, even_only = (PoissonLaplace(*PRIOR) for _ in range(3))
    for day in range(20):
        state = rng.bit_generator.state
        _day(whole, rng, day, -2.0)
        rng.bit_generator.state = state  # the same counts for the half's own model
        _day(odd_only if day % 2 else even_only, rng, day, -2.0)
    odd, odd_weighted, even, even_weighted = whole.half_likelihood(1)
    for (information, weighted), alone in [
        ((odd, odd_weighted), odd_only),
        ((even, even_weighted), even_only),
    ]:
        want, want_weighted = alone.likelihood(1)
        assert information == pytest.approx(want, rel=0.05)
        assert weighted / information == pytest.approx(want_weighted / want, abs=0.02)
    information, _ = whole.likelihood(1)
    assert odd + even == pytest.approx(information, rel=0.05)


def test_the_halves_survive_a_snapshot_to_the_last_bit() -> None:
    """A restored model reads the halves as the live one, and learns on as it does."""
    rng = np.random.default_rng(5)
    model = PoissonLaplace(*PRIOR)
    for day in range(5):
        _day(model, rng, day, -1.5)
    before = model.half_likelihood(1)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.half_likelihood(1) == before
    state = rng.bit_generator.state
    _day(model, rng, 5, -1.5)
    rng.bit_generator.state = state
    _day(restored, rng, 5, -1.5)
    after = restored.half_likelihood(1)
    assert after == model.half_likelihood(1)
    assert after[:2] != before[:2]  # day 5 is the odd half's
    assert after[2:] == before[2:]


def _overclaiming_category(rng: np.random.Generator, halves: bool) -> CategoryPrior:
    """40 products of true spread 0.6 whose halves each hold noise of variance 0.25 and
    claim 1.0 (evidence over-wide, as where prices follow it): the whole claims 0.5."""
    prior = CategoryPrior()
    for i, e in enumerate(rng.normal(-2.0, 0.6, 40)):
        a, b = e + rng.normal(0, 0.5), e + rng.normal(0, 0.5)
        whole = (a + b) / 2
        prior.report(f"S{i}", 2.0, 2.0 * whole, halves=(1.0, a, 1.0, b) if halves else None)
    return prior


def test_the_halves_read_the_spread_the_claimed_noise_hides() -> None:
    """Read from the products' whole evidence, which claims twice the noise it holds, the
    spread comes out narrow; read from the halves, it comes to the truth."""
    wide, narrow = [], []
    for seed in range(6):
        wide.append(_overclaiming_category(np.random.default_rng(seed), True).spread())
        narrow.append(_overclaiming_category(np.random.default_rng(seed), False).spread())
    assert float(np.mean(wide)) == pytest.approx(0.6, abs=0.1)
    assert float(np.mean(narrow)) < float(np.mean(wide)) - 0.15


def test_products_without_two_halves_leave_the_spread_to_the_whole() -> None:
    rng = np.random.default_rng(1)
    mu, precision = np.full((64, 3), -2.0), np.full((64, 3), 10.0)
    values = np.array([[1.0] * 3, [-2.0] * 3, [1.0] * 3, [-2.0] * 3])
    assert halves_spread_weights((np.zeros(3, bool), values), mu, precision, 0.7) is None
    with_halves = _overclaiming_category(rng, True)
    with_halves.report("S0", 2.0, -4.0, halves=(2.0, -4.0, 0.0, 0.0))  # one half only
    assert "S0" not in with_halves.halves


def test_a_day_prices_one_deviate_on_a_moving_posterior() -> None:
    """The day's decisions price its one deviate on the posterior of the moment; the next
    day draws another; a restored pricer prices the same."""
    pricer = ProductPricer("SKU-7", list_price=10.0, unit_cost=5.0)
    day = 86_400.0
    first = pricer.draw(5 * day + 60.0, -2.0, 0.4)
    deviate = (first + 2.0) / 0.2
    for hour in range(1, 24):
        mean, std = -2.0 - hour * 0.01, 0.4 / (1 + hour)
        got = pricer.draw(5 * day + hour * 3600.0, mean, std)
        assert got == pytest.approx(mean + deviate * std / 2)
    restored = pickle.loads(pickle.dumps(pricer))
    assert restored.draw(5 * day + 23.5 * 3600, -2.0, 0.4) == first
    deviates = set()
    for d in range(1, 6):
        pricer.decisions += 1  # each day's first decision draws from its own stream
        deviates.add(round((pricer.draw((5 + d) * day, -2.0, 0.4) + 2.0) / 0.2, 9))
    assert len(deviates) == 5
