"""A learner keeps its last reading of a coefficient under a given prior until it learns or its
prior is set: a kept reading is the one a fresh solve gives, to the last bit."""

from __future__ import annotations

import pickle
import random

import pytest

from online_models.poisson_glm import PoissonLaplace

PRIORS = [(-1.5, 1.0), (-2.0, 0.5), (-1.0, 0.8)]  # a few, so that readings repeat


def _fresh(model: PoissonLaplace) -> PoissonLaplace:
    """The same learner without any kept reading (a snapshot keeps none)."""
    return pickle.loads(pickle.dumps(model))


@pytest.mark.parametrize("seed", range(5))
def test_every_reading_is_what_a_fresh_solve_gives(seed: int) -> None:
    """Learning, absorbing and setting the prior between readings under a few priors."""
    rng = random.Random(seed)
    model = PoissonLaplace([0.0, -1.5, 0.0], [3.0, 1.0, 0.2])
    for _ in range(300):
        step = rng.choice(["learn", "absorb", "set", "read", "read", "read"])
        if step == "learn":
            x = [1.0, rng.uniform(-0.3, 0.3), 1.0]
            model.learn_one(x, rng.randint(0, 9), exposure=rng.uniform(0.5, 2.0))
        elif step == "absorb":
            model.absorb(2)
        elif step == "set":
            model.set_prior(1, *rng.choice(PRIORS))
        else:
            prior = rng.choice(PRIORS)
            assert model.marginal_under(1, *prior) == _fresh(model).marginal_under(1, *prior)


def test_a_repeated_reading_solves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    model = PoissonLaplace([0.0, -1.5], [3.0, 1.0])
    for x, units in [(-0.2, 30), (0.0, 20), (0.2, 12)]:
        model.learn_one([1.0, x], units, exposure=1.0)
    first = model.marginal_under(1, -2.0, 0.5)
    solves = 0
    solve = PoissonLaplace._solve

    def counted(self: PoissonLaplace, *args: object) -> object:
        nonlocal solves
        solves += 1
        return solve(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(PoissonLaplace, "_solve", counted)
    assert model.marginal_under(1, -2.0, 0.5) == first
    assert solves == 0
    model.learn_one([1.0, 0.1], 15, exposure=1.0)
    assert model.marginal_under(1, -2.0, 0.5) != first  # learned: read again
    assert solves > 0
