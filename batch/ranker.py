"""Train the recommendation ranker: re-order the candidates by how likely the shopper takes one.

Cut-offs one horizon (a day) apart: the latest is the holdout (features before it, outcomes in
the day after it); up to :data:`TRAIN_CUTOFFS` earlier ones are the training queries. When the
lake holds the served-list log (bronze ``recommendations-served``) with taken items in the
training days and the holdout day, the queries are the lists the API served: positives are
items shown and then carted or bought within :data:`CHOSEN_WITHIN` (``batch.ranker_data.TAKEN``:
what the shop wants from a list, not what the shopper looked at), negatives the items shown
and not taken (``batch.ranker_data.served_set``). Otherwise the training falls
back to rebuilt candidate lists of the shoppers who bought, with :data:`NEGATIVES` sampled
unbought candidates per query (``ranking_set``); the run's ``training_set`` parameter says
which, and why. The model is a LightGBM binary classifier over
``online_models.ranking.RANKER_FEATURES``; it is scored with HR@10 and NDCG@10 against the
popularity list and against the candidates' own order.

The holdout's candidates come in the order they were shown (served lists) or built (the
fallback): the blend's own order, which the API serves when no ranker is loaded. A ranker is
worth serving only if it orders them at least as well, so :func:`order_gate` compares the two
list by list on the holdout (later lists than any the ranker was trained on) and, when those
are served lists, refuses a ranker unless the :data:`GATE_CONFIDENCE` lower bounds of its mean
differences in HR@10 and NDCG@10 of the taken items are no lower than -:data:`GATE_MARGIN`: a
few lists cannot pass a ranker by chance. A refused ranker is registered but not promoted
(``batch.training.register_ranker``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import lightgbm as lgb
import numpy as np
import pyarrow as pa
import structlog
from scipy.stats import t as t_dist

from batch.demand import THREADS
from batch.lake import table_version
from batch.onnx_export import Checked, Export, export
from batch.ranker_data import (
    CutoffFactors,
    RankingSet,
    load_events,
    load_served,
    ranking_set,
    served_set,
)
from batch.result import WaitingForData
from batch.silver import connect
from online_models.ranking import RANKER_FEATURES
from schemas.lake import ORDER_LINES, USER_ACTIVITY, bronze_path, silver_path
from schemas.topics import RECOMMENDATIONS_SERVED

log = structlog.get_logger(__name__)

MODEL = "ranker"
HORIZON = timedelta(days=1)
TRAIN_CUTOFFS = 3
NEGATIVES = 15  # sampled unbought candidates per training query (the fallback)
CHOSEN_WITHIN = timedelta(hours=1)  # a served item carted or bought this soon after it was shown
MIN_HISTORY = timedelta(days=1)
K = 10
GATE_MARGIN = 0.01  # how much lower than the candidates' own order HR@10 / NDCG@10 may be
GATE_CONFIDENCE = 0.9  # of the lower bound on the ranker's mean difference from that order


def hit_and_ndcg(ranked: list[str], positives: set[str], k: int = K) -> tuple[float, float]:
    """HR@k and NDCG@k (binary relevance) of one ranked list.

    >>> hit_and_ndcg(["a", "b", "c"], {"b"}, k=2)
    (1.0, 0.6309297535714575)
    >>> hit_and_ndcg(["a"], {"z"}, k=2)
    (0.0, 0.0)
    """
    top = ranked[:k]
    dcg = sum(1.0 / math.log2(i + 2) for i, sku in enumerate(top) if sku in positives)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(positives))))
    return (1.0 if dcg > 0 else 0.0), (dcg / ideal if ideal else 0.0)


def per_list(data: RankingSet, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HR@10 and NDCG@10 of each query when its candidates are sorted by ``scores``."""
    hits, gains = np.zeros(data.queries), np.zeros(data.queries)
    for query, positives in enumerate(data.positives):
        rows = np.flatnonzero(data.groups == query)
        order = rows[np.argsort(-scores[rows], kind="stable")]
        hits[query], gains[query] = hit_and_ndcg([data.candidate_skus[i] for i in order], positives)
    return hits, gains


def evaluate(data: RankingSet, scores: np.ndarray) -> tuple[float, float]:
    """Mean HR@10 and NDCG@10 over the queries when candidates are sorted by ``scores``."""
    hits, gains = per_list(data, scores)
    return _mean(hits), _mean(gains)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


def lower_bound(differences: np.ndarray, confidence: float = GATE_CONFIDENCE) -> float:
    """One-sided lower confidence bound of the mean of paired per-list differences: Student's
    t, mean - t(confidence, n - 1) x standard error, never below -1 (the lowest a difference
    of HR@10 or NDCG@10 can be). With fewer than two lists nothing bounds the mean: -1.

    Two pseudo-lists join the real ones, one the ranker loses entirely (-1) and one it wins
    entirely (+1), as Agresti and Caffo add pseudo-counts to a difference of proportions: a
    difference of HR@10 is 0 on most lists, so a holdout where no list differs would
    otherwise have no spread and bound the mean at 0 however few its lists (two tying lists
    passed a ranker). Now a holdout of ties bounds it by how many lists it has: about
    -1.8 / n at 90 %, so passing the gate's -0.01 on ties alone takes ~190 lists. The price
    is a wider bound on few lists whose differences are small.

    >>> round(lower_bound(np.array([0.1, -0.1] * 50)), 3)  # equal on average, 100 lists
    -0.022
    >>> round(lower_bound(np.array([0.1, -0.1] * 5)), 3)  # the same on 10 lists: wider
    -0.172
    >>> [round(lower_bound(np.zeros(n)), 3) for n in (2, 40, 400)]  # ties only
    [-0.669, -0.044, -0.005]
    >>> lower_bound(np.array([0.2]))
    -1.0
    """
    n = len(differences)
    if n < 2:
        return -1.0
    padded = np.concatenate([differences, [-1.0, 1.0]])
    spread = float(np.std(padded, ddof=1)) / math.sqrt(len(padded))
    t = float(t_dist.ppf(confidence, len(padded) - 1))
    return max(-1.0, float(np.mean(padded)) - t * spread)


def _popularity(data: RankingSet) -> tuple[float, float]:
    results = [hit_and_ndcg(data.popular, positives) for positives in data.positives]
    return float(np.mean([h for h, _ in results])), float(np.mean([n for _, n in results]))


@dataclass(frozen=True)
class Gate:
    """The ranker's order against the candidates' own order on the holdout: whether it is
    no worse, whether that decides its promotion (``applied``), why, and the figures (logged
    as the run's ``gate_*`` metrics)."""

    passed: bool
    applied: bool
    reason: str
    metrics: dict[str, float]

    @property
    def refuses(self) -> bool:
        return self.applied and not self.passed


def order_gate(
    test: RankingSet,
    scores: np.ndarray,
    margin: float = GATE_MARGIN,
    applied: bool = True,
    confidence: float = GATE_CONFIDENCE,
) -> Gate:
    """Pass when the ranker's ``scores`` order the holdout's candidates no worse than their
    own order (the blend's, as shown or built) with confidence: per holdout list, the paired
    difference (ranker - own order) of HR@10 and of NDCG@10 of the taken items, and on both
    a one-sided lower ``confidence`` bound of the mean difference (:func:`lower_bound`) at
    least ``-margin``. Few lists mean a wide bound, so a ranker that differs from the own
    order by chance on a few lists is refused however its means compare; a holdout of fewer
    than two lists with a taken item passes nothing. ``applied`` is False when the holdout is
    not lists the API served (the fallback's rebuilt lists put the buy-again candidates before
    discover's, not in the order served): the figures are then recorded and decide nothing.

    >>> from batch.ranker_data import RankingSet
    >>> def holdout(lists):  # 12 candidates a list in their own order, the taken one 0 or 1
    ...     rank = np.eye(1, len(RANKER_FEATURES), RANKER_FEATURES.index("candidate_rank"))
    ...     taken = [str(n % 2) for n in range(lists)]
    ...     return RankingSet((np.tile(np.arange(12.0), lists)[:, None] * rank).astype(np.float32),
    ...                       np.array([int(str(i) == t) for t in taken for i in range(12)]),
    ...                       np.repeat(np.arange(lists), 12),
    ...                       [str(i) for _ in range(lists) for i in range(12)],
    ...                       [{t} for t in taken], [])
    >>> own = -np.tile(np.arange(12.0), 400)  # the same order as the candidates' own
    >>> order_gate(holdout(400), own).passed, order_gate(holdout(40), own[:480]).passed
    (True, False)
    >>> gate = order_gate(holdout(40), -own[:480])  # the taken items last: out of the top 10
    >>> gate.passed, gate.metrics["gate_hr_at_10_difference"], gate.metrics["gate_lists"]
    (False, -1.0, 40.0)
    >>> gate.reason.split("; ")  # doctest: +NORMALIZE_WHITESPACE
    ["refused: the ranker's HR@10 0.000 / NDCG@10 0.000 against the candidates' own order
      1.000 / 0.815 on 40 holdout lists",
     '90% lower bounds of the mean differences -1.000 / -0.844 (margin 0.01)']
    """
    ranker = per_list(test, scores)
    given = per_list(test, -test.features[:, RANKER_FEATURES.index("candidate_rank")])
    (hr, ndcg), (hr_given, ndcg_given) = map(_mean, ranker), map(_mean, given)
    hr_bound, ndcg_bound = (
        lower_bound(r - g, confidence) for r, g in zip(ranker, given, strict=True)
    )
    passed = min(hr_bound, ndcg_bound) >= -margin
    verdict = "passed" if passed else "refused"
    if not applied:
        verdict = f"not applied, the holdout not being served lists ({verdict} otherwise)"
    reason = (
        f"{verdict}: the ranker's HR@10 {hr:.3f} / NDCG@10 {ndcg:.3f} "
        f"against the candidates' own order {hr_given:.3f} / {ndcg_given:.3f} on "
        f"{test.queries} holdout lists; {confidence:.0%} lower bounds of the mean differences "
        f"{hr_bound:+.3f} / {ndcg_bound:+.3f} (margin {margin})"
    )
    metrics = {
        "gate_hr_at_10_difference": hr - hr_given,
        "gate_ndcg_at_10_difference": ndcg - ndcg_given,
        "gate_hr_at_10_lower_bound": hr_bound,
        "gate_ndcg_at_10_lower_bound": ndcg_bound,
        "gate_lists": float(test.queries),
        "gate_confidence": confidence,
        "gate_margin": margin,
        "gate_passed": float(passed),
        "gate_applied": float(applied),
    }
    return Gate(passed, applied, reason, metrics)


@dataclass(frozen=True)
class RankerModel:
    model: lgb.LGBMClassifier
    exported: Export
    metrics: dict[str, float]
    test: RankingSet
    trained_on: dict[str, int]
    training_set: str  # served lists (real negatives) or the fallback, and why
    gate: Gate  # against the candidates' own order on the holdout: may it be promoted?


def _concat(
    sets: list[RankingSet], seed: int, negatives: int | None = NEGATIVES
) -> tuple[np.ndarray, np.ndarray]:
    """Training rows: queries with a positive (the rest teach nothing), each with all its
    positives and at most ``negatives`` sampled negatives (all of them when None)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for s in sets:
        keep = np.zeros(len(s.labels), dtype=bool)
        for query in np.unique(s.groups[s.labels == 1]):
            rows = np.flatnonzero(s.groups == query)
            wrong = rows[s.labels[rows] == 0]
            keep[rows[s.labels[rows] == 1]] = True
            if negatives is not None and len(wrong) > negatives:
                wrong = rng.choice(wrong, negatives, replace=False)
            keep[wrong] = True
        xs.append(s.features[keep])
        ys.append(s.labels[keep])
    return np.concatenate(xs), np.concatenate(ys)


@dataclass(frozen=True)
class RankerData:
    """The ranker's training rows and holdout, read from the lake before the fit."""

    x: np.ndarray
    y: np.ndarray
    test: RankingSet
    trained_on: dict[str, int]
    training_set: str
    served_lists: int
    on_served: bool = False  # trained and held out on served lists: the order gate applies


@dataclass(frozen=True)
class RankerFit:
    """The fitted ranker before its evaluation and export."""

    model: lgb.LGBMClassifier
    data: RankerData


def ranker_data(lake_dir: Path, catalogue: pa.Table, seed: int = 7) -> RankerData:
    """The training rows (queries at the cut-offs before the holdout's) and the holdout."""
    categories = dict(
        zip(
            catalogue.column("sku").to_pylist(),
            catalogue.column("category").to_pylist(),
            strict=True,
        )
    )
    con = connect()
    try:
        first, last = load_events(lake_dir, con)
        test_cutoff = last - HORIZON
        cutoffs = [test_cutoff - HORIZON * k for k in range(1, TRAIN_CUTOFFS + 1)]
        cutoffs = [c for c in cutoffs if c - first >= MIN_HISTORY]
        if not cutoffs:
            needed = (HORIZON * 2 + MIN_HISTORY) / timedelta(days=1)
            so_far = (last - first) / timedelta(days=1)
            raise WaitingForData(
                f"waiting for {needed:.0f} days of silver events; {so_far:.1f} so far"
            )
        served_lists = load_served(lake_dir, con)
        train_sets, test, training_set, negatives = _training_sets(
            con, served_lists, cutoffs, test_cutoff, categories
        )
    finally:
        con.close()
    log.info("ranker.training_set", training_set=training_set)
    x, y = _concat(train_sets, seed, negatives)
    if y.sum() == 0 or y.sum() == len(y):
        raise WaitingForData("waiting for training rows with both taken and untaken candidates")
    trained_on = {
        f"silver/{t}": table_version(silver_path(lake_dir, t)) for t in (USER_ACTIVITY, ORDER_LINES)
    }
    if negatives is None:  # trained on the served-list log
        served = bronze_path(lake_dir, RECOMMENDATIONS_SERVED)
        trained_on[f"bronze/{RECOMMENDATIONS_SERVED.name}"] = table_version(served)
    return RankerData(x, y, test, trained_on, training_set, served_lists, negatives is None)


def estimator(seed: int = 7) -> lgb.LGBMClassifier:
    """The ranker before its fit (its parameters are the run's)."""
    return lgb.LGBMClassifier(
        n_estimators=150,
        learning_rate=0.08,
        num_leaves=31,
        min_child_samples=50,
        max_bin=63,
        subsample=0.8,
        subsample_freq=1,
        random_state=seed,
        n_jobs=THREADS,
        verbose=-1,
    )


def fit_ranker(data: RankerData, seed: int = 7) -> RankerFit:
    model = estimator(seed)
    model.fit(data.x, data.y)
    return RankerFit(model, data)


def evaluate_ranker(
    fit: RankerFit, checked: Callable[[Checked], None] = lambda _: None
) -> RankerModel:
    """HR@10 and NDCG@10 on the holdout against the popularity list and the candidates' own
    order; export to ONNX (``checked``: :func:`batch.onnx_export.export`)."""
    model, data, test = fit.model, fit.data, fit.data.test
    scores = np.asarray(model.predict_proba(test.features))[:, 1]
    hr, ndcg = evaluate(test, scores)
    hr_pop, ndcg_pop = _popularity(test)
    hr_cand, ndcg_cand = evaluate(test, -test.features[:, RANKER_FEATURES.index("candidate_rank")])
    gate = order_gate(test, scores, applied=data.on_served)
    exported = export(model, test.features, checked=checked)
    metrics = {
        "hr_at_10": hr,
        "ndcg_at_10": ndcg,
        "hr_at_10_popularity": hr_pop,
        "ndcg_at_10_popularity": ndcg_pop,
        "hr_at_10_candidate_order": hr_cand,
        "ndcg_at_10_candidate_order": ndcg_cand,
        "onnx_max_abs_diff": exported.max_abs_diff,
        "train_rows": float(len(data.y)),
        "train_negatives": float(len(data.y) - data.y.sum()),
        "served_lists": float(data.served_lists),
        "test_queries": float(test.queries),
        **gate.metrics,
    }
    log.info("ranker.trained", gate=gate.reason, **{k: round(v, 4) for k, v in metrics.items()})
    return RankerModel(model, exported, metrics, test, data.trained_on, data.training_set, gate)


def train_ranker(lake_dir: Path, catalogue: pa.Table, seed: int = 7) -> RankerModel:
    return evaluate_ranker(fit_ranker(ranker_data(lake_dir, catalogue, seed), seed))


def _training_sets(
    con: duckdb.DuckDBPyConnection,
    served_lists: int,
    cutoffs: list[datetime],
    test_cutoff: datetime,
    categories: dict[str, str],
) -> tuple[list[RankingSet], RankingSet, str, int | None]:
    """The training sets, the holdout, what they are (the run's ``training_set`` parameter)
    and how many negatives to sample per query (None: keep every real negative)."""
    factors = CutoffFactors(con, [*cutoffs, test_cutoff])  # each fitted once, oldest first
    if served_lists:
        train = [served_set(con, c, HORIZON, CHOSEN_WITHIN, categories, factors) for c in cutoffs]
        test = served_set(con, test_cutoff, HORIZON, CHOSEN_WITHIN, categories, factors)
        if test.queries and any(t.queries for t in train):
            minutes = CHOSEN_WITHIN / timedelta(minutes=1)
            return (
                train,
                test,
                f"served lists ({served_lists} in the log): items shown and then carted or "
                f"bought within {minutes:.0f} min are positives, items shown and not taken "
                "real negatives",
                None,
            )
        why = (
            f"the served-list log ({served_lists} lists) has no list with a taken item in "
            "the training days and the holdout day"
        )
    else:
        why = "no served-list log in the lake"
    train = [ranking_set(con, c, HORIZON, categories, factors) for c in cutoffs]
    test = ranking_set(con, test_cutoff, HORIZON, categories, factors)
    return (
        train,
        test,
        f"sampled negatives ({why}): the shoppers who bought, up to {NEGATIVES} of their "
        "rebuilt candidates not bought per query",
        NEGATIVES,
    )


def description(trained_on: dict[str, int], training_set: str) -> dict[str, Any]:
    """What a version's metadata says before the fit: features, data versions, model kind."""
    return {
        "features": list(RANKER_FEATURES),
        "trained_on": trained_on,
        "model_type": "lightgbm.LGBMClassifier(binary)",
        "target": "P(the shopper takes the candidate: carted or bought within the hour after "
        "it was served, or bought within a day when no served-list log exists)",
        "holdout": "the last day's outcomes, features before it",
        "training_set": training_set,
    }


def metadata(trained: RankerModel) -> dict[str, Any]:
    return {
        **description(trained.trained_on, trained.training_set),
        "metrics": trained.metrics,
        "order_gate": trained.gate.reason,
    }


def ndcg_of(test: RankingSet) -> Any:
    """A scorer for promotion: NDCG@10 of given scores on ``test``."""
    return lambda scores: evaluate(test, scores)[1]
