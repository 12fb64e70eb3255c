"""Bayesian Poisson log-linear regression with an exposure offset, learned one count at a time.

``units ~ Poisson(exposure · exp(x·θ))``. The posterior of ``θ`` is kept Gaussian (a Laplace
approximation): each observation moves it to the maximum of (current posterior × its Poisson
likelihood), found by a few damped Newton steps, and adds the likelihood's curvature there to
the precision. Unlike a regression on ``log(units / exposure)``, zero counts and small counts
enter as what they are, so the slope is not pulled toward zero where counts are few.

The evidence is kept apart from the prior (its natural parameters: the precision it added and
the information vector), so the prior can be replaced at any time: a hierarchical prior learned
from other products applies to everything a product has already seen.

>>> import math, random
>>> rng = random.Random(1)
>>> model = PoissonLaplace(prior_mean=[0.0, 0.0], prior_std=[3.0, 3.0])
>>> for _ in range(400):
...     x = rng.uniform(-0.3, 0.3)
...     lam = 20.0 * math.exp(1.0 - 2.0 * x)
...     units = sum(1 for _ in range(200) if rng.random() < lam / 200)
...     _ = model.learn_one([1.0, x], units, exposure=20.0)
>>> mean, std = model.mean(), model.std()
>>> round(mean[1], 1), bool(std[1] < 0.05)
(-2.0, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.linalg import _umath_linalg

NEWTON_STEPS = 30
TOLERANCE = 1e-9  # on the linear predictor
MAX_STEP = 2.0  # largest Newton step on the linear predictor: keeps exp() from overshooting
PRIOR_TOLERANCE = 1e-3  # prior changes smaller than this keep the cached posterior

# A reading of one coefficient's marginal under a given prior: (index, prior mean, prior std,
# (posterior mean, posterior std)).
Read = tuple[int, float, float, tuple[float, float]]


def inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix, as ``np.linalg.inv`` gives it.

    The same LAPACK routine, bit for bit, without the public function's checks and its
    floating-point error state, which cost two thirds of a 5 × 5 inverse (~5 of 7.4 µs; a
    pricing step inverts one or two). Those exist to report a singular matrix, and none is
    inverted here: each is a diagonal prior precision (> 0) plus the evidence's precision,
    which is positive semi-definite.

    >>> m = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> bool((inverse(m) == np.linalg.inv(m)).all())
    True
    """
    return np.asarray(_umath_linalg.inv(matrix, signature="d->d"))


class PoissonLaplace:
    """A Gaussian posterior over the coefficients of a Poisson rate with an offset.

    One observation's likelihood depends on the coefficients only through the linear
    predictor ``η = x·θ``, so its Laplace update is a one-dimensional Newton search for ``η``
    followed by a rank-one update of the covariance: no matrix is solved per observation.
    """

    __slots__ = (
        "_cov",
        "_halves",
        "_info",
        "_mean",
        "_odd_info",
        "_odd_precision",
        "_precision_data",
        "_prior_mean",
        "_prior_precision",
        "_read",
        "n",
    )

    def __init__(self, prior_mean: Sequence[float], prior_std: Sequence[float]) -> None:
        d = len(prior_mean)
        self._prior_mean = np.asarray(prior_mean, dtype=float)
        self._prior_precision = np.diag(1.0 / np.square(np.asarray(prior_std, dtype=float)))
        self._precision_data = np.zeros((d, d))
        self._info = np.zeros(d)
        # the evidence of the odd whiles (days) alone; the even whiles' is the whole less it
        self._odd_precision = np.zeros((d, d))
        self._odd_info = np.zeros(d)
        # what each half said of one coefficient when last read: (index, λ_odd, λ_odd·d_odd,
        # λ_even, λ_even·d_even), NaN for a half whose evidence moved since
        self._halves: np.ndarray = np.full(5, math.nan)
        self._mean: np.ndarray | None = None
        self._cov: np.ndarray | None = None
        self._read: Read | None = None
        self.n = 0

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Every array in one block of doubles, pickled in C: each numpy array pickles
        # through Python (~4 µs), and a category's snapshot holds six per product. The cached
        # posterior (mean, covariance) is kept as it is, not recomputed on load: the rank-one
        # updates of learn_one make it differ from a fresh inverse in the last bits.
        mean, cov = self._mean, self._cov
        parts = [self._prior_mean, self._prior_precision, self._precision_data, self._info]
        parts += [self._odd_precision, self._odd_info, self._halves]
        parts += [a for a in (mean, cov) if a is not None]
        flat = np.concatenate([a.ravel() for a in parts]).tobytes()
        held = (mean is not None, cov is not None)
        return _restore_laplace, (len(self._prior_mean), self.n, held, flat)

    def set_prior(self, index: int, mean: float, std: float) -> None:
        """Replace the prior of one coefficient; the evidence already seen is kept."""
        precision = 1.0 / (std * std)
        if self._holds_prior(index, mean, precision):
            return
        self._prior_mean[index] = mean
        self._prior_precision[index, index] = precision
        self._cov = None
        self._read = None

    def _holds_prior(self, index: int, mean: float, precision: float) -> bool:
        """Whether the coefficient's prior is already (``mean``, ``precision``), within
        PRIOR_TOLERANCE."""
        old_mean = float(self._prior_mean[index])
        old_precision = float(self._prior_precision[index, index])
        return (
            abs(old_mean - mean) < PRIOR_TOLERANCE
            and abs(precision / old_precision - 1) < PRIOR_TOLERANCE
        )

    def marginal_under(self, index: int, mean: float, std: float) -> tuple[float, float]:
        """One coefficient's posterior mean and standard deviation were its prior (``mean``,
        ``std``), without keeping that prior: a reading leaves the model as it was, so what it
        learns next does not depend on when, or how often, it was read (:meth:`set_prior`
        drops the cached posterior, whose rank-one updates differ from a fresh solve in the
        last bits).

        The last reading is kept until the model learns or its prior is set: a product's
        feature rows read it under the same prior far more often than it learns, and each
        reading under another prior than the model's own is a solve."""
        read = self._read
        if read is not None and read[0] == index and read[1] == mean and read[2] == std:
            return read[3]
        precision = 1.0 / (std * std)
        if self._holds_prior(index, mean, precision):
            marginal = self.marginal(index)
        else:
            prior_mean = self._prior_mean.copy()
            prior_precision = self._prior_precision.copy()
            prior_mean[index], prior_precision[index, index] = mean, precision
            coefficients, cov = self._solve(prior_precision, prior_mean)
            marginal = float(coefficients[index]), math.sqrt(float(cov[index, index]))
        self._read = (index, mean, std, marginal)
        return marginal

    def prior_variance(self, index: int) -> float:
        """The variance of one coefficient's current prior (what its evidence is read against)."""
        return 1.0 / float(self._prior_precision[index, index])

    def _posterior(self) -> tuple[np.ndarray, np.ndarray]:
        if self._cov is None or self._mean is None:
            self._mean, self._cov = self._solve(self._prior_precision)
        return self._mean, self._cov

    def _solve(
        self, prior_precision: np.ndarray, prior_mean: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and covariance of the evidence under a prior of this precision and
        these means (None: the prior's own)."""
        means = self._prior_mean if prior_mean is None else prior_mean
        cov = inverse(prior_precision + self._precision_data)
        return cov @ (prior_precision @ means + self._info), cov

    def mean(self) -> list[float]:
        mean, _ = self._posterior()
        return [float(v) for v in mean]

    def covariance(self) -> np.ndarray:
        _, cov = self._posterior()
        return cov.copy()

    def std(self) -> list[float]:
        _, cov = self._posterior()
        return [math.sqrt(float(v)) for v in np.diag(cov)]

    def marginal(self, index: int) -> tuple[float, float]:
        """Posterior mean and standard deviation of one coefficient."""
        mean, cov = self._posterior()
        return float(mean[index]), math.sqrt(float(cov[index, index]))

    def rate(self, x: Sequence[float]) -> float:
        """The expected count per unit of exposure at covariates ``x`` under the posterior
        mean: ``exp(x·mean)``.

        >>> PoissonLaplace([math.log(0.2), 1.0], [1.0, 1.0]).rate([1.0, 0.0])
        0.2
        """
        mean, _ = self._posterior()
        return math.exp(min(30.0, float(np.asarray(x, dtype=float) @ mean)))

    def learn_one(
        self,
        x: Sequence[float],
        units: float,
        exposure: float,
        weight: float = 1.0,
        odd: bool = False,
    ) -> float:
        """Learn ``units`` seen over ``exposure`` at covariates ``x``; returns the Pearson
        residual of the count under the posterior before this update.

        ``weight`` < 1 tempers the likelihood (quasi-Poisson: counts more dispersed than
        Poisson, e.g. units sold in baskets of several). ``odd``: the observation falls in an
        odd while (day), whose evidence is also kept apart (:meth:`half_likelihood`).
        """
        if exposure <= 0.0:
            return 0.0
        v = np.asarray(x, dtype=float)
        mean, cov = self._posterior()
        cx = cov @ v
        eta0 = float(v @ mean)
        spread = float(v @ cx)  # prior variance of η
        log_e = math.log(exposure)
        expected = math.exp(min(30.0, log_e + eta0))
        residual = (units - expected) / math.sqrt(expected) if expected > 0 else 0.0
        # MAP of η: η = η0 + spread · w · (units − exposure · e^η)
        eta = eta0
        for _ in range(NEWTON_STEPS):
            rate = math.exp(min(30.0, log_e + eta))
            f = eta - eta0 - spread * weight * (units - rate)
            step = -f / (1.0 + spread * weight * rate)
            step = max(-MAX_STEP, min(MAX_STEP, step))
            eta += step
            if abs(step) < TOLERANCE:
                break
        rate = math.exp(min(30.0, log_e + eta))
        curvature = weight * rate
        self._mean = mean + cx * (weight * (units - rate))
        # outer products by broadcasting (np.outer's own arithmetic, without its call overhead)
        self._cov = cov - cx[:, None] * cx * (curvature / (1.0 + curvature * spread))
        precision = curvature * (v[:, None] * v)
        info = v * (weight * (units - rate) + curvature * eta)
        self._precision_data += precision
        self._info += info
        if odd:
            self._odd_precision += precision
            self._odd_info += info
        self._halves[1 if odd else 3] = math.nan
        self.n += 1
        self._read = None
        return residual

    def absorb(
        self, index: int, vague: Sequence[int] = (), odd: bool = False
    ) -> tuple[float, float]:
        """Integrate coefficient ``index`` out of the evidence, under its prior, and start it
        afresh: what the evidence said jointly of it and the others becomes what it says of
        the others alone. A random effect that holds for a while (e.g. one day's level of
        demand) is a coefficient absorbed when its while ends; contrasts within that while
        keep their weight, differences between whiles count as far as its prior allows.

        Returns the mean and variance of the coefficient's posterior before it was absorbed
        (what the evidence said of it), or ``(0, 0)`` when no evidence touched it. The
        posterior is read with the priors of the ``vague`` coefficients set aside (those the
        evidence has touched): a prior kept wide on purpose, e.g. a level of demand the data
        are to say, would otherwise claim that the coefficient is unknown by more than it is.

        ``odd``: the while fell in the odd half of the evidence (:meth:`learn_one`), which
        absorbs it too; the other half holds nothing of it.

        One while of 50 units: the level's std is then that of 50 counts and of the
        while's own effect (std 0.1), √(1/50 + 0.1²) ≈ 0.17, however many units it held.

        >>> model = PoissonLaplace(prior_mean=[0.0, 0.0], prior_std=[10.0, 0.1])
        >>> for units in (30, 20):
        ...     _ = model.learn_one([1.0, 1.0], units, exposure=1.0)
        >>> _ = model.absorb(1)
        >>> model.absorb(1)  # the next while starts with no evidence
        (0.0, 0.0)
        >>> mean, std = model.marginal(0)
        >>> round(mean, 1), round(std, 2)  # log(25)
        (3.2, 0.17)
        """
        data = self._precision_data
        if data[index, index] <= 0.0:
            return 0.0, 0.0
        moment = self._moment(index, [j for j in vague if data[j, j] > 0.0])
        joint = data[index, index] + self._prior_precision[index, index]
        prior_info = self._prior_precision[index, index] * self._prior_mean[index]
        self._precision_data, self._info = _integrated_out(
            data, self._info, index, joint, prior_info
        )
        if odd:
            # the while's evidence is all in the odd half: the same update, on its part
            self._odd_precision, self._odd_info = _integrated_out(
                self._odd_precision, self._odd_info, index, joint, prior_info
            )
        self._halves[1 if odd else 3] = math.nan
        self._cov = self._mean = None
        self._read = None
        return moment

    def _moment(self, index: int, vague: Sequence[int]) -> tuple[float, float]:
        """Posterior mean and variance of one coefficient, the priors of ``vague`` set aside."""
        if not vague:
            mean, cov = self._posterior()
            return float(mean[index]), float(cov[index, index])
        prior = self._prior_precision.copy()
        for j in vague:
            prior[j, j] = 0.0
        mean, cov = self._solve(prior)
        return float(mean[index]), float(cov[index, index])

    def information(self, index: int) -> float:
        """The precision the evidence added to one coefficient's marginal posterior (the
        Fisher information it holds about it once the other coefficients are accounted for;
        0 while the data say nothing about it)."""
        _, std = self.marginal(index)
        return max(0.0, 1.0 / (std * std) - float(self._prior_precision[index, index]))

    def likelihood(self, index: int) -> tuple[float, float]:
        """What the evidence alone says of one coefficient, its prior divided out of the
        marginal posterior: ``(information, information × estimate)``. Exact here: the prior
        is independent across coefficients and the evidence Gaussian, so the marginal
        posterior is the coefficient's prior times the evidence's marginal likelihood.

        >>> model = PoissonLaplace(prior_mean=[0.0, -1.5], prior_std=[3.0, 1.0])
        >>> for x, units in [(-0.2, 30), (0.0, 20), (0.2, 12)] * 20:
        ...     _ = model.learn_one([1.0, x], units, exposure=1.0)
        >>> information, weighted = model.likelihood(1)
        >>> model.set_prior(1, 0.0, 1e4)  # a flat prior: the evidence alone
        >>> mean, std = model.marginal(1)
        >>> round(weighted / information, 3) == round(mean, 3), round(information * std**2, 3)
        (True, 1.0)
        """
        mean, std = self.marginal(index)
        prior_precision = float(self._prior_precision[index, index])
        information = max(0.0, 1.0 / (std * std) - prior_precision)
        return information, mean / (std * std) - prior_precision * float(self._prior_mean[index])

    def half_likelihood(self, index: int) -> tuple[float, float, float, float]:
        """What each half of the evidence alone says of one coefficient, as
        :meth:`likelihood` reads the whole: ``(λ_odd, λ_odd·d_odd, λ_even, λ_even·d_even)``,
        the odd whiles' (days') evidence and the even ones'. Two estimates of the same
        coefficient whose errors do not go together, even where what was observed followed
        the evidence (each observation's error is news to both), so their product reads the
        spread of the coefficient across models whatever noise the evidence claims
        (``online_models.pooling``). A half is solved again only once its evidence moved.

        >>> model = PoissonLaplace(prior_mean=[0.0, -1.5], prior_std=[3.0, 1.0])
        >>> for day in range(4):
        ...     for x, units in [(-0.2, 30), (0.2, 12)] * 5:
        ...         _ = model.learn_one([1.0, x], units, exposure=1.0, odd=day % 2 == 1)
        >>> odd, odd_weighted, even, even_weighted = model.half_likelihood(1)
        >>> whole, whole_weighted = model.likelihood(1)
        >>> round(odd_weighted / odd, 2), round(even_weighted / even, 2)  # the same days
        (-2.29, -2.29)
        >>> bool(abs(odd - even) < 0.05 * odd and abs(odd + even - whole) < 0.05 * whole)
        True
        """
        halves = self._halves
        if halves[0] != index:
            halves[:] = (index, math.nan, math.nan, math.nan, math.nan)
        if math.isnan(halves[1]):
            halves[1:3] = self._half(index, self._odd_precision, self._odd_info)
        if math.isnan(halves[3]):
            even = self._precision_data - self._odd_precision, self._info - self._odd_info
            halves[3:5] = self._half(index, *even)
        return float(halves[1]), float(halves[2]), float(halves[3]), float(halves[4])

    def _half(self, index: int, precision: np.ndarray, info: np.ndarray) -> tuple[float, float]:
        """:meth:`likelihood` of the evidence ``precision``, ``info`` (a half of the whole)."""
        if precision[index, index] <= 0.0:
            return 0.0, 0.0
        prior = self._prior_precision
        cov = inverse(prior + precision)
        variance = float(cov[index, index])
        mean = float(cov[index] @ (prior @ self._prior_mean + info))
        prior_precision = float(prior[index, index])
        information = max(0.0, 1.0 / variance - prior_precision)
        return information, mean / variance - prior_precision * float(self._prior_mean[index])


def _integrated_out(
    precision: np.ndarray, info: np.ndarray, index: int, joint: float, prior_info: float
) -> tuple[np.ndarray, np.ndarray]:
    """Evidence (``precision``, ``info``) with coefficient ``index`` integrated out under a
    prior of information ``prior_info``; ``joint`` is its posterior precision (the Schur
    complement of :meth:`PoissonLaplace.absorb`)."""
    column = precision[:, index].copy()
    column[index] = 0.0
    total = info[index] + prior_info
    precision = precision - column[:, None] * column / joint
    info = info - column * (total / joint)
    precision[index, :] = 0.0
    precision[:, index] = 0.0
    info[index] = 0.0
    return precision, info


def _restore_laplace(d: int, n: int, held: tuple[bool, bool], flat: bytes) -> PoissonLaplace:
    """A model from :meth:`PoissonLaplace.__reduce__`'s block: each array a view of one
    writable copy (they never overlap, so updates in place stay each array's own)."""
    values = np.frombuffer(flat).copy()
    vector, matrix = d, d * d
    model = PoissonLaplace.__new__(PoissonLaplace)
    model._prior_mean = values[:vector]
    at = vector
    model._prior_precision = values[at : at + matrix].reshape(d, d)
    at += matrix
    model._precision_data = values[at : at + matrix].reshape(d, d)
    at += matrix
    model._info = values[at : at + vector]
    at += vector
    model._odd_precision = values[at : at + matrix].reshape(d, d)
    at += matrix
    model._odd_info = values[at : at + vector]
    at += vector
    model._halves = values[at : at + 5]
    at += 5
    model._mean = model._cov = None
    model._read = None
    if held[0]:
        model._mean = values[at : at + vector]
        at += vector
    if held[1]:
        model._cov = values[at : at + matrix].reshape(d, d)
    model.n = n
    return model
