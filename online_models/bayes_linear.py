"""Bayesian linear regression with a Gaussian prior and known noise precision.

The same model as River's ``linear_model.BayesianLinearRegression`` (alpha = prior precision,
beta = noise precision), plus what dynamic pricing needs from it: a prior mean, and the
posterior of each coefficient (mean, standard deviation, samples for Thompson sampling).
Features are plain dicts, as in River.

>>> model = BayesLinear(["x"], alpha=1.0, beta=100.0)
>>> for x in (-1.0, 0.0, 1.0, 2.0):
...     model.learn_one({"x": x}, 1.0 - 2.0 * x)
>>> round(model.coef_mean("x"), 2), round(model.coef_mean("intercept"), 2)
(-2.0, 1.0)
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

import numpy as np


class BayesLinear:
    """Online conjugate Bayesian linear regression over a fixed list of named features."""

    def __init__(
        self,
        features: Sequence[str],
        alpha: float = 1.0,
        beta: float = 1.0,
        prior_mean: Mapping[str, float] | None = None,
        intercept: bool = True,
    ) -> None:
        self.names = (["intercept"] if intercept else []) + list(features)
        self._index = {n: i for i, n in enumerate(self.names)}
        self.alpha = alpha
        self.beta = beta
        d = len(self.names)
        m0 = np.zeros(d)
        for name, value in (prior_mean or {}).items():
            m0[self._index[name]] = value
        self._precision = alpha * np.eye(d)
        self._b = alpha * m0
        self._mean = m0.copy()
        self._cov: np.ndarray | None = None
        self.n = 0

    def _vector(self, x: Mapping[str, float]) -> np.ndarray:
        v = np.zeros(len(self.names))
        if "intercept" in self._index:
            v[0] = 1.0
        for name, value in x.items():
            i = self._index.get(name)
            if i is not None:
                v[i] = value
        return v

    def learn_one(self, x: Mapping[str, float], y: float, w: float = 1.0) -> None:
        """Learn one observation; ``w`` scales its precision (heteroscedastic noise)."""
        v = self._vector(x)
        self._precision += w * self.beta * np.outer(v, v)
        self._b += w * self.beta * v * y
        self._cov = None
        self.n += 1

    def _posterior(self) -> tuple[np.ndarray, np.ndarray]:
        if self._cov is None:
            self._cov = np.linalg.inv(self._precision)
            self._mean = self._cov @ self._b
        return self._mean, self._cov

    def predict_one(self, x: Mapping[str, float]) -> float:
        mean, _ = self._posterior()
        return float(mean @ self._vector(x))

    def predict_std(self, x: Mapping[str, float]) -> float:
        """Standard deviation of the predictive distribution (noise included)."""
        _, cov = self._posterior()
        v = self._vector(x)
        return math.sqrt(1.0 / self.beta + float(v @ cov @ v))

    def coef_mean(self, name: str) -> float:
        mean, _ = self._posterior()
        return float(mean[self._index[name]])

    def coef_std(self, name: str) -> float:
        _, cov = self._posterior()
        i = self._index[name]
        return math.sqrt(float(cov[i, i]))

    def sample_coef(self, name: str, rng: random.Random) -> float:
        """One draw of a coefficient from its marginal posterior (Thompson sampling)."""
        return rng.gauss(self.coef_mean(name), self.coef_std(name))
