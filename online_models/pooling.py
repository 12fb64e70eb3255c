"""Partial pooling: the elasticity prior of a product, learned from its category and its shop.

A three-level hierarchical model: a product's elasticity ``e_i ~ Normal(μ_c, τ²)`` around its
category's mean, the categories' means ``μ_c ~ Normal(M, σ²)`` around the shop's, and
hyperpriors ``M ~ Normal(−1.5, 0.6²)`` (a typical retail elasticity), ``σ ~ HalfNormal(0.4)``
and ``τ ~ HalfNormal(0.7)``: a shop with no evidence yet gives a product −1.5 ± 1.0.

Each level reports what its own evidence says, its prior divided out, so nothing is counted
twice: a product reports the information ``λ_i`` and ``λ_i·d_i`` of its likelihood
(``d_i`` the likelihood's estimate); a category reports what its products say of ``μ_c``
(:meth:`CategoryPrior.evidence`, its mean under a flat prior with ``τ`` integrated out).

Each level's fit is Bayesian in its mean and spread: for each spread of a grid the mean is
integrated in closed form (``d_i ~ Normal(μ, τ² + 1/λ_i)``), which gives the marginal
likelihood of the spread; the grid weights are its posterior. The prior a member gets is
that posterior's predictive for a member (its mean, and the spread plus the uncertainty of
the mean, averaged over the grid). Members with little evidence weigh little in the mean and
nothing in the spread, so the spread does not collapse when every member knows little
(which point estimates, EM or marginal maximum likelihood, do), and the mean follows the
members as their evidence grows. A category's prior for ``μ_c`` is the shop's predictive
with the category's own report left out: 150 products locate the shop's mean where the seven
of one category cannot.

>>> prior = CategoryPrior()
>>> round(prior.mean, 2), round(prior.std, 2)
(-1.5, 1.0)
>>> for i, e in enumerate([-2.0, -2.2, -1.8, -2.1, -1.9, -2.0]):
...     prior.report(f"SKU-{i}", information=20.0, information_mean=20.0 * e)
>>> round(prior.mean, 2), round(prior.std, 2)
(-1.99, 0.21)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from online_models.demand_pattern import DemandPattern, WeekdayConversion

BASE_MEAN = -1.5  # a typical retail elasticity: the centre of every shop's prior
SHOP_MEAN_STD = 0.6  # how far a shop's mean elasticity may lie from it, a priori
SIGMA_SCALE = 0.4  # half-normal scale of the spread of category means within a shop
TAU_SCALE = 0.7  # half-normal scale of the spread of elasticities within a category
TAU_GRID = np.linspace(0.02, 2.5, 64)  # spreads the posteriors are evaluated on
MIN_INFORMATION = 1e-6  # reports with less say nothing
REFIT_CHANGE = 0.02  # a refit once the reports moved the category by this share of its spread
# the grid's squares and each hyperprior's log density on it, computed once (a fit is a few
# dozen operations on 64-element arrays: their count, not their size, is what a fit costs)
_GRID2 = TAU_GRID**2
_GRID2_COLUMN = TAU_GRID[:, None] ** 2
_SPREAD_PRIOR: dict[float, np.ndarray] = {}


def _spread_prior(spread_scale: float) -> np.ndarray:
    """The half-normal log density of the spreads of the grid, up to a constant."""
    prior = _SPREAD_PRIOR.get(spread_scale)
    if prior is None:
        prior = _SPREAD_PRIOR[spread_scale] = _GRID2 / (2 * spread_scale**2)
    return prior


@dataclass(frozen=True, slots=True)
class GridFit:
    """Per spread of the grid: its posterior weight, the mean's posterior mean and precision."""

    grid: np.ndarray
    weights: np.ndarray
    mu: np.ndarray
    precision: np.ndarray

    def predictive(self) -> tuple[float, float]:
        """Mean and std of a new member: the spread plus the uncertainty of the mean."""
        mean = float(self.weights @ self.mu)
        second = float(self.weights @ (_GRID2 + 1.0 / self.precision + self.mu**2))
        return mean, math.sqrt(max(second - mean * mean, 1e-12))

    def spread(self) -> float:
        """The spread's posterior root mean square: the level's ``τ`` (or ``σ``)."""
        return math.sqrt(float(self.weights @ (self.grid * self.grid)))

    def mean_posterior(self) -> tuple[float, float]:
        """Mean and std of the level's mean itself (the spread integrated out)."""
        mean = float(self.weights @ self.mu)
        second = float(self.weights @ (1.0 / self.precision + self.mu**2))
        return mean, math.sqrt(max(second - mean * mean, 1e-12))


def _member_terms(
    information: np.ndarray, information_mean: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per spread of the grid (rows) and member (columns): ``w_i = 1 / (spread² + 1/λ_i)``,
    ``w_i·d_i``, ``w_i·d_i²`` and ``log w_i``; every fit below is a sum of them over members."""
    lam, h = information[None, :], information_mean[None, :]
    scale = 1.0 + lam * _GRID2_COLUMN
    w = lam / scale
    return w, h / scale, h * h / (lam * scale), np.log(w)


def _fit_from_sums(
    w: np.ndarray,
    wd: np.ndarray,
    wdd: np.ndarray,
    log_w: np.ndarray,
    base_mean: float,
    mean_std: float,
    spread_scale: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid weights, the mean's posterior mean and precision from the members' sums (the
    grid along the first axis; further axes are separate fits)."""
    spread_prior = _spread_prior(spread_scale).reshape((-1,) + (1,) * (w.ndim - 1))
    p0 = 0.0 if math.isinf(mean_std) else 1.0 / mean_std**2
    precision = p0 + w
    mu = (p0 * base_mean + wd) / precision
    quad = wdd + p0 * base_mean**2 - precision * mu * mu
    log_post = 0.5 * log_w - 0.5 * np.log(precision) - 0.5 * quad - spread_prior
    weights = np.exp(log_post - log_post.max(axis=0))
    return weights / weights.sum(axis=0), mu, precision


def grid_fit(
    information: np.ndarray,
    information_mean: np.ndarray,
    base_mean: float,
    mean_std: float,
    spread_scale: float,
) -> GridFit:
    """The posterior of a level's mean and spread given its members' likelihoods.

    ``mean_std = inf`` makes the mean's prior flat (then at least one member must report).
    """
    w, wd, wdd, log_w = (t.sum(axis=1) for t in _member_terms(information, information_mean))
    weights, mu, precision = _fit_from_sums(w, wd, wdd, log_w, base_mean, mean_std, spread_scale)
    return GridFit(TAU_GRID, weights, mu, precision)


def fit_leaving_each_out(
    information: np.ndarray,
    information_mean: np.ndarray,
    base_mean: float,
    mean_std: float,
    spread_scale: float,
) -> tuple[GridFit, np.ndarray, np.ndarray]:
    """The level's fit (:func:`grid_fit`) and, for each member, the predictive mean and std of
    the level fitted without it (its own likelihood left out, so that it is not counted
    twice: once in its prior, once as its evidence). The members' terms are computed once:
    each member's fit is the members' sums less its own terms.

    >>> info, mean = np.array([4.0, 4.0, 4.0]), np.array([-4.0, -8.0, -12.0])
    >>> fit, m, s = fit_leaving_each_out(info, mean, -1.5, 0.5, 0.7)
    >>> alone = grid_fit(info[1:], mean[1:], -1.5, 0.5, 0.7).predictive()
    >>> bool(abs(m[0] - alone[0]) < 1e-9 and abs(s[0] - alone[1]) < 1e-9)
    True
    >>> fit.predictive() == grid_fit(info, mean, -1.5, 0.5, 0.7).predictive()
    True
    """
    terms = _member_terms(information, information_mean)
    return _leaving_each_out(terms, _sums(terms), base_mean, mean_std, spread_scale)


Terms = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _sums(terms: Terms) -> Terms:
    """The members' terms summed over the members: one column, a row per spread."""
    w, wd, wdd, log_w = (t.sum(axis=1, keepdims=True) for t in terms)
    return w, wd, wdd, log_w


def _leaving_each_out(
    terms: Terms,
    sums: Terms,
    base_mean: float,
    mean_std: float,
    spread_scale: float,
    halves: Halves | None = None,
) -> tuple[GridFit, np.ndarray, np.ndarray]:
    """:func:`fit_leaving_each_out` from the members' terms (:func:`_member_terms`) and
    their sums (:func:`_sums`). With ``halves`` (:func:`halves_spread_weights`) the spread's
    weights are read from the members' halves, for the level's fit and every member's."""
    w, wd, wdd, log_w = sums
    fit = GridFit(
        TAU_GRID,
        *_fit_from_sums(
            w[:, 0], wd[:, 0], wdd[:, 0], log_w[:, 0], base_mean, mean_std, spread_scale
        ),
    )
    ow, owd, owdd, olog_w = terms
    weights, mu, precision = _fit_from_sums(
        w - ow, wd - owd, wdd - owdd, log_w - olog_w, base_mean, mean_std, spread_scale
    )
    if halves is not None:
        spread = halves_spread_weights(halves, mu, precision, spread_scale)
        if spread is not None:
            whole, each = spread
            fit = GridFit(TAU_GRID, whole, fit.mu, fit.precision)
            weights = np.where(np.isnan(each), weights, each)
    mean = (weights * mu).sum(axis=0)
    second = (weights * (_GRID2_COLUMN + 1.0 / precision + mu**2)).sum(axis=0)
    return fit, mean, np.sqrt(np.maximum(second - mean * mean, 1e-12))


# Per member of a level (columns, in the order of its reports): whether it reported both
# halves, and what each said (rows λ_a, λ_a·d_a, λ_b, λ_b·d_b; :func:`halves_spread_weights`).
Halves = tuple[np.ndarray, np.ndarray]


def halves_spread_weights(
    halves: Halves, mu: np.ndarray, precision: np.ndarray, spread_scale: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The spread's posterior weights on the grid, read from the members' halves: the
    level's, and each member's with its own halves left out (a column per member, NaN where
    no other member has evidence in both halves); None when no member has.

    A member's evidence in two halves (odd and even days) gives two estimates ``d_a``, ``d_b``
    of its coefficient whose errors are uncorrelated even where the data followed the
    evidence (an observation's error is news to both halves), though each half may claim
    more noise (``1/λ``) than it holds. Around the level's mean fitted without the member
    (``μ₋ᵢ``, precision ``P₋ᵢ``: the columns of ``mu``, ``precision``), the product
    ``(d_a − μ₋ᵢ)(d_b − μ₋ᵢ)`` has the expectation ``τ² + 1/P₋ᵢ`` whatever the claimed noise,
    and the variance ``(τ² + 1/λ_a + 1/P₋ᵢ)(τ² + 1/λ_b + 1/P₋ᵢ) + (τ² + 1/P₋ᵢ)²`` (a Gaussian
    pair's). The members' moment conditions ``m_i`` over their variances ``v_i``, summed, give
    a pseudo-likelihood of the spread, ``−(Σ m/v)² / (2 Σ 1/v)``, in place of the marginal
    likelihood (which takes the claimed noise at its word), under the same half-normal
    hyperprior.

    >>> rng = np.random.default_rng(0)
    >>> n, tau = 400, 0.6
    >>> e = rng.normal(-2.0, tau, n)
    >>> a, b = e + rng.normal(0, 0.5, n), e + rng.normal(0, 0.5, n)  # each half claims 1.0
    >>> halves = (np.ones(n, bool), np.array([np.ones(n), a, np.ones(n), b]))
    >>> mu, precision = np.full((64, n), -2.0), np.full((64, n), 1e6)
    >>> whole, each = halves_spread_weights(halves, mu, precision, 0.7)
    >>> round(float(np.sqrt(whole @ TAU_GRID**2)), 1), each.shape
    (0.6, (64, 400))
    """
    both, values = halves
    if not both.any():
        return None
    la, ha, lb, hb = values
    around = 1.0 / precision + _GRID2_COLUMN  # the covariance of the two halves' deviations
    m = (ha / la - mu) * (hb / lb - mu) - around
    v = (around + 1.0 / la) * (around + 1.0 / lb) + around * around
    m_v, one_v = np.where(both, m / v, 0.0), np.where(both, 1.0 / v, 0.0)
    total_m_v, total_one_v = m_v.sum(axis=1, keepdims=True), one_v.sum(axis=1, keepdims=True)
    prior = _spread_prior(spread_scale)[:, None]
    whole = _weights(-(total_m_v**2) / (2.0 * total_one_v) - prior)[:, 0]
    others = (both.sum() - both) > 0  # another member has both halves
    rest_m_v, rest_one_v = total_m_v - m_v, np.where(others, total_one_v - one_v, 1.0)
    each = _weights(-(rest_m_v**2) / (2.0 * rest_one_v) - prior)
    return whole, np.where(others, each, np.nan)


def _weights(log_post: np.ndarray) -> np.ndarray:
    """Normalised weights over the grid (the first axis) from log posteriors."""
    weights = np.exp(log_post - log_post.max(axis=0))
    return np.asarray(weights / weights.sum(axis=0))


def _pairs(reports: dict[str, tuple[float, float]], leave_out: str = "") -> np.ndarray:
    pairs = np.array(
        [v for k, v in reports.items() if k != leave_out and v[0] > MIN_INFORMATION],
        dtype=float,
    )
    return pairs.reshape(-1, 2)


@dataclass
class ShopPrior:
    """Online prior for the mean elasticities of a shop's categories (the level above them).

    Each category reports what its products say of its mean; a category's prior for its mean
    is the shop's predictive for a category with that category's own report left out.

    >>> shop = ShopPrior()
    >>> [round(v, 2) for v in shop.for_category("dairy")]
    [-1.5, 0.72]
    >>> for i in range(20):
    ...     shop.report(f"c{i}", information=2.0, information_mean=2.0 * -2.0)
    >>> [round(v, 2) for v in shop.for_category("dairy")]
    [-1.97, 0.22]
    """

    base_mean: float = BASE_MEAN
    reports: dict[str, tuple[float, float]] = field(default_factory=dict)
    version: int = 0  # counts the reports: a category knows whether the others moved
    # each category's prior as last fitted (:meth:`for_category`), until another reports
    priors: dict[str, tuple[float, float]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def report(self, category: str, information: float, information_mean: float) -> None:
        """What a category's products say of its mean (precision, precision × estimate)."""
        if information > MIN_INFORMATION:
            self.reports[category] = (information, information_mean)
        else:
            self.reports.pop(category, None)
        self.version += 1
        # a category's prior leaves its own report out: only the other categories' moved
        own = self.priors.get(category)
        self.priors = {} if own is None else {category: own}

    def shop_mean(self, hyperprior: bool = True) -> tuple[float, float]:
        """Mean and std of the shop's mean elasticity, every category's report counted.

        ``hyperprior=False`` makes the mean's prior flat: what the categories' evidence
        alone says (at least one category must have reported). The difference is the pull
        of ``Normal(BASE_MEAN, SHOP_MEAN_STD²)`` toward a typical retail elasticity.

        >>> shop = ShopPrior()
        >>> for i in range(20):
        ...     shop.report(f"c{i}", information=2.0, information_mean=2.0 * -2.0)
        >>> [round(v, 3) for v in shop.shop_mean()], round(shop.shop_mean(False)[0], 3)
        ([-1.966, 0.156], -2.0)
        """
        pairs = _pairs(self.reports)
        mean_std = SHOP_MEAN_STD if hyperprior else math.inf
        fit = grid_fit(pairs[:, 0], pairs[:, 1], self.base_mean, mean_std, SIGMA_SCALE)
        return fit.mean_posterior()

    def for_category(self, category: str) -> tuple[float, float]:
        """Mean and std of the prior of ``category``'s mean elasticity (fitted once per
        change of the other categories' reports: a category asks after each of its refits
        and whenever the others moved)."""
        prior = self.priors.get(category)
        if prior is None:
            pairs = _pairs(self.reports, leave_out=category)
            fit = grid_fit(pairs[:, 0], pairs[:, 1], self.base_mean, SHOP_MEAN_STD, SIGMA_SCALE)
            prior = self.priors[category] = fit.predictive()
        return prior

    def __getstate__(self) -> dict[str, object]:
        """The reports and version, as snapshots hold them (the fitted priors are rebuilt)."""
        state = dict(self.__dict__)
        del state["priors"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.priors = {}


_EMPTY_SHOP = ShopPrior().for_category("")  # the prior of a category mean in a new shop


def _flat_evidence(sums: Terms, members: int) -> tuple[float, float]:
    """What the members say of their level's mean under a flat prior (the spread
    integrated out), from their terms' sums (:func:`_sums`): its precision and precision ×
    mean; ``(0, 0)`` without members."""
    if not members:
        return 0.0, 0.0
    w, wd, wdd, log_w = (t[:, 0] for t in sums)
    fit = GridFit(TAU_GRID, *_fit_from_sums(w, wd, wdd, log_w, 0.0, math.inf, TAU_SCALE))
    mean, std = fit.mean_posterior()
    return 1.0 / std**2, mean / std**2


@dataclass
class CategoryPrior:
    """Online hierarchical prior for the elasticities of one category's products.

    ``base_mean`` ± ``base_std`` is the prior of the category's mean elasticity (from the
    shop level, :class:`ShopPrior`; a new shop's by default). ``mean`` ± ``std`` is the
    prior of a product that has reported nothing yet; a product that has reported gets the
    category fitted without its own report (:meth:`for_product`), as a category gets the
    shop fitted without its own.

    >>> prior = CategoryPrior()
    >>> for i, e in enumerate([-2.0, -2.2, -1.8, -3.0]):
    ...     prior.report(f"SKU-{i}", information=5.0, information_mean=5.0 * e)
    >>> [round(v, 2) for v in prior.for_product("SKU-3")]  # the others' evidence only
    [-1.91, 0.53]
    >>> prior.for_product("SKU-9") == (prior.mean, prior.std)  # nothing reported yet
    True
    """

    base_mean: float = _EMPTY_SHOP[0]
    base_std: float = _EMPTY_SHOP[1]
    reports: dict[str, tuple[float, float]] = field(default_factory=dict)
    mean: float = BASE_MEAN
    std: float = field(init=False)
    own: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)
    fitted: dict[str, tuple[float, float]] | None = field(default=None, repr=False)
    fitted_mean: tuple[float, float] = field(default=(BASE_MEAN, 1.0), repr=False)
    # what each half of a product's evidence says (:meth:`report`), where both say something
    halves: dict[str, tuple[float, float, float, float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._fit()

    def report(
        self,
        sku: str,
        information: float,
        information_mean: float,
        refit: bool = True,
        halves: tuple[float, float, float, float] | None = None,
    ) -> None:
        """What a product's own evidence says of its elasticity (its likelihood, the prior
        divided out: precision ``information`` and ``information × estimate``); refits
        unless told not to (:meth:`rebase` will).

        ``halves``: the same of each half of the evidence (odd and even days,
        ``PoissonLaplace.half_likelihood``). Once a product's halves both say something,
        the category reads its spread from the halves (:func:`halves_spread_weights`), not
        from the scatter of the products' estimates less the noise their evidence claims."""
        if information > MIN_INFORMATION:
            self.reports[sku] = (information, information_mean)
        else:
            self.reports.pop(sku, None)
        if halves is not None and min(halves[0], halves[2]) > MIN_INFORMATION:
            self.halves[sku] = halves
        else:
            self.halves.pop(sku, None)
        if refit:
            self._fit()

    def _halves(self, reports: dict[str, tuple[float, float]]) -> Halves | None:
        """The halves of the products of ``reports`` that count (:func:`_pairs`'s order);
        None while no product's halves both say something."""
        if not self.halves:
            return None
        skus = [k for k, v in reports.items() if v[0] > MIN_INFORMATION]
        both = np.array([k in self.halves for k in skus], dtype=bool)
        values = np.ones((4, len(skus)))
        for i, k in enumerate(skus):
            if both[i]:
                values[:, i] = self.halves[k]
        return both, values

    def moved(self, share: float) -> bool:
        """Whether the products' reports moved materially since the last fit: a product
        joined or left, or the reports' pull on the category's mean moved it by more than
        ``share`` of the category's spread.

        A product pulls on the mean with ``λ_i·(d_i − μ)`` over the mean's precision ``P``;
        the moves of the pulls since the fit, plus ``std·|Δλ_i| / P`` for what a change of
        information does to the spread, summed over the products, bound (to first order)
        how far the fit would move: a report that moved less waits for the next refit.

        >>> prior = CategoryPrior()
        >>> for i in range(4):
        ...     prior.report(f"S{i}", information=4.0, information_mean=-8.0)
        >>> prior.report("S0", information=4.1, information_mean=-8.3, refit=False)
        >>> prior.moved(0.05), prior.moved(0.001)
        (False, True)
        >>> prior.report("S9", information=0.1, information_mean=-0.2, refit=False)
        >>> prior.moved(0.05)  # a new product
        True
        """
        fitted = self.fitted
        if fitted is None or fitted.keys() != self.reports.keys():
            return True
        mean, precision = self.fitted_mean
        pull = 0.0
        for sku, (information, weighted) in self.reports.items():
            was_information, was_weighted = fitted[sku]
            change = information - was_information
            pull += abs(weighted - was_weighted - mean * change) + self.std * abs(change)
        return pull > share * self.std * precision

    def rebase(self, mean: float, std: float) -> tuple[float, float]:
        """A new prior for the category's mean (the shop level moved); refits. Returns what
        the reports it fitted on say of the category's mean (:meth:`evidence`)."""
        self.base_mean, self.base_std = mean, std
        return self._fit()

    def evidence(self, fitted: bool = False) -> tuple[float, float]:
        """What the products say of the category's mean, its own prior divided out: the
        precision and precision × mean of its posterior under a flat prior (``τ``
        integrated out); ``(0, 0)`` before any product reported. ``fitted``: from the
        reports of the last fit (what the category last told the level above it)."""
        reports = self.fitted if fitted else None
        pairs = _pairs(self.reports if reports is None else reports)
        return _flat_evidence(_sums(_member_terms(pairs[:, 0], pairs[:, 1])), len(pairs))

    def for_product(self, sku: str) -> tuple[float, float]:
        """Mean and std of ``sku``'s elasticity prior: the category without its own report."""
        return self.own.get(sku) or (self.mean, self.std)

    def spread(self) -> float:
        """The spread of elasticities within the category (``τ``, the posterior root mean
        square) that a fit on every product's current report holds."""
        pairs = _pairs(self.reports)
        terms = _member_terms(pairs[:, 0], pairs[:, 1])
        fit, _, _ = _leaving_each_out(
            terms, _sums(terms), self.base_mean, self.base_std, TAU_SCALE,
            self._halves(self.reports),
        )  # fmt: skip
        return fit.spread()

    def _fit(self) -> tuple[float, float]:
        """Refit on the current reports; returns their :meth:`evidence`, from the same
        members' terms (one pass over the grid serves both)."""
        pairs = _pairs(self.reports)
        terms = _member_terms(pairs[:, 0], pairs[:, 1])
        sums = _sums(terms)
        fit, means, stds = _leaving_each_out(
            terms, sums, self.base_mean, self.base_std, TAU_SCALE, self._halves(self.reports)
        )
        self.mean, self.std = fit.predictive()
        skus = [k for k, v in self.reports.items() if v[0] > MIN_INFORMATION]
        own = zip(skus, means.tolist(), stds.tolist(), strict=True)
        self.own = {k: (m, s) for k, m, s in own}
        self.fitted = dict(self.reports)
        mean, std = fit.mean_posterior()
        self.fitted_mean = (mean, 1.0 / std**2)  # the category mean and its precision
        return _flat_evidence(sums, len(pairs))


# Day-to-day variation of a product's demand (a multiplicative effect per product and day):
# the prior guess is a day's demand ~20 % off the product's usual, held as if read from this
# many product-days of this many units each (each weighing as add_day weighs such a day), so
# the products' own days soon outweigh it. Days measured without noise would weigh
# 1 / DAY_VARIANCE_PRIOR² each, ~12 times a day of 10 units: ten of them outweighed the first
# hundred days of a category's products, and the learned variance stayed near the guess.
DAY_VARIANCE_PRIOR = 0.04
DAY_PRIOR_DAYS = 10.0
DAY_PRIOR_UNITS = 10.0
_PRIOR_DAY = DAY_PRIOR_UNITS / (1 + DAY_PRIOR_UNITS * DAY_VARIANCE_PRIOR)  # λ / (1 + λ·variance)
DAY_PRIOR_WEIGHT = DAY_PRIOR_DAYS * _PRIOR_DAY**2
# A day whose evidence on its effect is below this share of the prior's says nothing of it
# (its posterior variance is the prior's but for rounding).
NOTHING_READ = 1e-9
DAY_VARIANCE_MIN = 1e-4  # a 1 % day-to-day variation at least: keeps the prior proper
DAY_VARIANCE_MAX = 1.0


@dataclass
class CategoryPool:
    """What the products of one category learn together: the elasticity prior, the hour ×
    weekday pattern of sales, the weekday rhythm of conversion, and how many units a sale
    line carries (the dispersion of unit counts: baskets of 2 or 3 are not 2 or 3 shoppers).

    ``shop`` is the level above the category: the other categories' reports, from which the
    category's mean takes its prior. Categories priced together share one (as in the
    in-process closed loop of the benchmarks); a category alone holds its own, which then
    knows only the shop-wide hyperprior.
    """

    name: str = ""
    prior: CategoryPrior = field(default_factory=CategoryPrior)
    shop: ShopPrior = field(default_factory=ShopPrior)
    sales: DemandPattern = field(default_factory=DemandPattern)
    conversion: WeekdayConversion = field(default_factory=WeekdayConversion)
    line_units: float = 0.0
    line_units_squared: float = 0.0
    # the day effects' second moment: weighted sums of each product-day's reading
    day_sum: float = DAY_PRIOR_WEIGHT * DAY_VARIANCE_PRIOR
    day_weight: float = DAY_PRIOR_WEIGHT
    refit_change: float = REFIT_CHANGE
    shop_seen: int = field(default=-1, repr=False)  # the shop's version last taken

    def report(
        self,
        sku: str,
        information: float,
        information_mean: float,
        halves: tuple[float, float, float, float] | None = None,
    ) -> None:
        """A product's evidence on its elasticity, whole and by halves
        (:meth:`CategoryPrior.report`). Once the
        products' reports moved materially since the category's last fit
        (:meth:`CategoryPrior.moved`), or the shop's prior for the category's mean moved by
        more than ``refit_change`` of its std, the category reports to the shop, takes the
        shop's prior for its mean and refits; ``refit_change = 0`` refits at every change.
        A smaller move is kept and enters the next refit: a refit is four fits over the
        spread grid, and a product's report moves a little at every observation."""
        self.prior.report(sku, information, information_mean, refit=False, halves=halves)
        share, prior = self.refit_change, self.prior
        moved = prior.moved(share)
        base = None
        if self.shop.version != self.shop_seen:
            # the other categories moved: the shop's prior for this one may have
            base = self.shop.for_category(self.name)
            self.shop_seen = self.shop.version
            moved = (
                moved
                or max(abs(base[0] - prior.base_mean), abs(base[1] - prior.base_std))
                > share * prior.base_std
            )
        if not moved:
            return
        # the shop's prior for the category leaves the category's own report out, so it is
        # the same before and after the report below
        evidence = self.prior.rebase(*(base or self.shop.for_category(self.name)))
        self.shop.report(self.name, *evidence)
        self.shop_seen = self.shop.version

    def add_sale_line(self, t: float, quantity: int, at_list_price: float = 1.0) -> None:
        """A sale line; ``at_list_price`` rescales it to what would have sold at the list
        price (``(price / list)^−e``), so the pattern learns when demand happens, not when
        prices were low."""
        self.sales.add_units(t, quantity * at_list_price)
        self.line_units += quantity
        self.line_units_squared += quantity * quantity

    @property
    def day_variance(self) -> float:
        """The variance of a product's log demand from one day to the next, beyond what its
        price and the hour × weekday pattern explain (weather, local events, a display): the
        prior of each product-day's effect. Learned from the products' days; see
        :meth:`add_day`."""
        return min(DAY_VARIANCE_MAX, max(DAY_VARIANCE_MIN, self.day_sum / self.day_weight))

    def add_day(self, mean: float, variance: float, prior: float) -> None:
        """A product-day's effect, read from its posterior (``mean``, ``variance``) under the
        ``prior`` variance it was learned with (the category's when the product last learned,
        which other products' days may have moved since): what that day's evidence alone
        says of it is ``u ~ Normal(d, 1/λ)`` with ``λ = 1/variance − 1/prior``;
        ``E[d²] = day_variance + 1/λ``, so ``d² − 1/λ`` reads the day variance. (Unbiased
        once the product's earlier days were integrated out under the true variance: the
        level ``d`` is read against carries their effects, and ``1/λ`` counts them at the
        variance they were integrated under, so a product's second day reads about
        ``2·true − prior``; later days, against a level of more days, much less so.) Readings are
        weighted by their precision's square, ``(λ / (1 + λ·day_variance))²``, so a day that
        saw few units weighs little (a day of ``n`` units has ``λ ≈ n``). Pseudo-readings of
        ``DAY_PRIOR_DAYS`` days of ``DAY_PRIOR_UNITS`` units at ``DAY_VARIANCE_PRIOR`` hold
        the estimate until the products' days say more.

        >>> pool = CategoryPool()
        >>> import random
        >>> rng = random.Random(3)
        >>> for _ in range(4000):  # days of 100 units, true day variance 0.01
        ...     d = rng.gauss(0.0, 0.1) + rng.gauss(0.0, 0.1)  # effect + counting noise
        ...     prior = pool.day_variance
        ...     variance = 1 / (1 / prior + 100)
        ...     pool.add_day(variance * 100 * d, variance, prior)
        >>> round(pool.day_variance, 3)
        0.01
        """
        information = 1.0 / variance - 1.0 / prior if variance > 0.0 else 0.0
        if information * prior < NOTHING_READ:
            return  # the day's evidence said nothing of its effect
        reading = mean / variance / information  # the effect the day's evidence alone says
        weight = (information / (1.0 + information * self.day_variance)) ** 2
        self.day_sum += weight * (reading * reading - 1.0 / information)
        self.day_weight += weight

    @property
    def unit_dispersion(self) -> float:
        """Var/mean of units for Poisson-many lines of random size: E[q²] / E[q] (≥ 1).

        >>> pool = CategoryPool()
        >>> for q in (1, 1, 1, 3):
        ...     pool.add_sale_line(0.0, q)
        >>> pool.unit_dispersion
        2.0
        """
        if self.line_units <= 0:
            return 1.0
        return max(1.0, self.line_units_squared / self.line_units)
