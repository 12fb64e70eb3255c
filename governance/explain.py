"""Per-feature contributions of a LightGBM model's forecast (LightGBM's own ``pred_contrib``).

The API serves ONNX, which carries no explanation. Each registered version therefore keeps the
native booster it was exported from (``registry.store.NATIVE_FILE``, thresholds already rounded
to float32 so it predicts what the ONNX file does), and the explainer is loaded from that same
version: an explanation always belongs to the model that made the forecast.

``pred_contrib`` gives TreeSHAP values in the model's raw score space: for the demand model's
Poisson objective that is the log of the expected units, so

    forecast = exp(bias + Σ contribution) = base × Π factor,   factor = exp(contribution)

A factor of 1.25 reads "this feature's value raises the forecast by 25 %".

TreeSHAP costs ~1.7 ms of CPU per row for the 300-tree demand model, the same per row whether
rows come one by one or a thousand at a time: the algorithm (trees × leaves × depth²), not call
overhead. :meth:`Explainer.explain_row` therefore remembers the latest :data:`CACHED_ROWS`
explanations by their exact input row: a product's row changes when its stream features, its
price or the weekday change, and the pricing detail is asked for far more often than that.

>>> import lightgbm as lgb
>>> rng = np.random.default_rng(0)
>>> x = rng.uniform(0, 1, (200, 2))
>>> y = rng.poisson(np.exp(1 + 2 * x[:, 0]))
>>> model = lgb.train({"objective": "poisson", "verbose": -1, "num_threads": 1},
...                   lgb.Dataset(x, y), num_boost_round=20)
>>> explainer = Explainer(model, ("a", "b"))
>>> (e,) = explainer.explain(np.array([[0.9, 0.5]]))
>>> abs(e.forecast - float(model.predict(np.array([[0.9, 0.5]]))[0])) < 1e-9
True
>>> e.contributions[0].feature, e.contributions[0].factor > 1
('a', True)
>>> explainer.explain_row(np.array([0.9, 0.5])) == e, explainer.cache_info().misses
(True, 1)
>>> explainer.explain_row(np.array([[0.9, 0.5]])) is explainer.explain_row(np.array([0.9, 0.5]))
True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # loaded with a booster: LightGBM imports scikit-learn (seconds per process)
    import lightgbm as lgb

Link = Literal["log", "identity", "logit"]
LOG_OBJECTIVES = ("poisson", "gamma", "tweedie")
CACHED_ROWS = 4096  # explanations kept per model version (~2 KB each)


@dataclass(frozen=True)
class Contribution:
    """One feature's share of one forecast."""

    feature: str
    value: float  # the feature's input value
    contribution: float  # in raw score space (log units for a Poisson model)
    factor: float  # what it multiplies the forecast by (log link); 1 + contribution otherwise


@dataclass(frozen=True)
class Explanation:
    """A forecast as a base value and every feature's contribution, largest effect first."""

    base: float  # the forecast with no feature information (the training mean)
    forecast: float
    link: Link
    contributions: tuple[Contribution, ...]

    def top(self, n: int) -> tuple[Contribution, ...]:
        return self.contributions[:n]


def link_of(booster: lgb.Booster) -> Link:
    """The link between raw score and prediction, from the booster's objective."""
    objective = str(booster.params.get("objective") or "").split(" ")[0]  # "poisson", ...
    if objective in LOG_OBJECTIVES:
        return "log"
    if objective in ("binary", "cross_entropy"):
        return "logit"
    return "identity"


def _inverse(link: Link, raw: float) -> float:
    if link == "log":
        return math.exp(raw)
    if link == "logit":
        return 1.0 / (1.0 + math.exp(-raw))
    return raw


class Explainer:
    """Explains rows of a model's feature matrix, columns in the order of ``features``."""

    def __init__(
        self, booster: lgb.Booster, features: Sequence[str], cached_rows: int = CACHED_ROWS
    ) -> None:
        if booster.num_feature() != len(features):
            raise ValueError(
                f"the booster has {booster.num_feature()} features, given {len(features)} names"
            )
        self.booster = booster
        self.features = tuple(features)
        self.link = link_of(booster)
        self._remembered = functools.lru_cache(maxsize=cached_rows)(self._explain_key)

    @classmethod
    def from_file(
        cls, path: Path, features: Sequence[str], cached_rows: int = CACHED_ROWS
    ) -> Explainer:
        import lightgbm as lgb

        return cls(lgb.Booster(model_file=str(path)), features, cached_rows)

    def contributions(self, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Raw contributions, one row per input row: one column per feature, then the bias."""
        matrix = np.asarray(rows, dtype=np.float32).astype(np.float64)
        return np.asarray(self.booster.predict(matrix, pred_contrib=True, num_threads=1))

    def explain(self, rows: np.ndarray[Any, Any]) -> list[Explanation]:
        contribs = self.contributions(rows)
        return [self._explanation(row, c) for row, c in zip(rows, contribs, strict=True)]

    def explain_row(self, row: np.ndarray[Any, Any]) -> Explanation:
        """One row's explanation; the same row again is answered from memory (thread-safe)."""
        vector = np.asarray(row, dtype=np.float64).ravel()
        if vector.shape != (len(self.features),):
            raise ValueError(f"expected one row of {len(self.features)} features, got {row.shape}")
        return self._remembered(vector.tobytes())

    def cache_info(self) -> functools._CacheInfo:
        return self._remembered.cache_info()

    def _explain_key(self, key: bytes) -> Explanation:
        (explanation,) = self.explain(np.frombuffer(key, dtype=np.float64).reshape(1, -1))
        return explanation

    def _explanation(self, row: np.ndarray[Any, Any], contrib: np.ndarray[Any, Any]) -> Explanation:
        bias = float(contrib[-1])
        parts = [
            Contribution(
                feature=name,
                value=float(value),
                contribution=float(c),
                factor=math.exp(float(c)) if self.link == "log" else 1.0 + float(c),
            )
            for name, value, c in zip(self.features, row, contrib[:-1], strict=True)
        ]
        parts.sort(key=lambda p: abs(p.contribution), reverse=True)
        return Explanation(
            base=_inverse(self.link, bias),
            forecast=_inverse(self.link, float(np.sum(contrib))),
            link=self.link,
            contributions=tuple(parts),
        )

    def global_importance(self, rows: np.ndarray[Any, Any]) -> dict[str, float]:
        """Mean absolute contribution of each feature over ``rows``, largest first."""
        mean = np.abs(self.contributions(rows)[:, :-1]).mean(axis=0)
        order = np.argsort(-mean)
        return {self.features[i]: float(mean[i]) for i in order}
