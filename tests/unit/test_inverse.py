"""The learner's inverse is numpy's public one, bit for bit, on the matrices it inverts."""

from __future__ import annotations

import numpy as np
import pytest

from online_models.poisson_glm import inverse


@pytest.mark.parametrize("seed", range(20))
def test_inverse_is_numpy_inv_to_the_last_bit(seed: int) -> None:
    """A diagonal prior precision plus evidence (a sum of curvature × x·xᵀ), from a few
    observations to many, weak to strong: what ``PoissonLaplace`` inverts."""
    rng = np.random.default_rng(seed)
    d = 5
    matrix = np.diag(1.0 / rng.uniform(0.05, 3.0, d) ** 2)
    for _ in range(int(rng.integers(0, 400))):
        x = np.concatenate([[1.0], rng.uniform(-0.3, 0.3, d - 1)])
        matrix += rng.exponential(10.0 ** rng.uniform(-3, 2)) * np.outer(x, x)
    before = matrix.copy()
    got = inverse(matrix)
    assert got.tobytes() == np.linalg.inv(matrix).tobytes()
    assert (matrix == before).all()  # the input is left as it was
    assert np.allclose(got @ matrix, np.eye(d), atol=1e-6)
