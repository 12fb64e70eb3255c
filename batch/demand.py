"""Train the demand model: units per sku-day from price, competition, seasonality and history.

The training set is point-in-time correct: for each (sku, day) of gold ``sku_daily`` Feast's
``get_historical_features`` joins the batch features stamped at the end of the day before
(``sku_daily_features``), which :func:`online_models.demand_features.sku_state_from_batch`
turns into the flows' hash form, and :func:`~online_models.demand_features.demand_features`
into the same row the API builds. The price of a day is the average price paid that day, or
the latest price paid before it when nothing sold (gold has no shelf price of unsold days).
The latest day is still filling and is left out. The last 20 % of days are the holdout:
WAPE of the model against the naive forecast "same units as the day before".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import structlog

from batch.lake import read_all, table_version
from batch.onnx_export import Checked, Export, export
from batch.result import WaitingForData
from governance.explain import Explainer
from governance.importance_plot import IMPORTANCE_FILE, importance_svg
from online_models.demand_features import DEMAND_FEATURES, demand_features, sku_state_from_batch
from schemas.features import BATCH_SKU_FEATURES
from schemas.lake import SKU_DAILY, SKU_DAILY_FEATURES, gold_path
from schemas.settings import Settings

log = structlog.get_logger(__name__)

HOLDOUT_SHARE = 0.2
MIN_DAYS = 3
"""Complete days of gold before training: two with a day before them (one to fit, one held out)."""
THREADS = 1  # LightGBM: two OpenMP threads ran 10× slower than one on the busy 2-core box
MODEL = "demand"
TREES = 300
LEAVES = 7
"""Leaves per tree. An explanation (TreeSHAP) costs about trees × leaves × depth² per row; on
the batch benchmark's shop (1M events) 7 leaves forecast as well as 31 did (holdout WAPE 0.335
against 0.336) and explain a row ~7× faster. Early stopping on the last fit days kept ~290 of
the 300 trees of 7 leaves, so the trees stay."""
IMPORTANCE_ROWS = 200
"""Holdout rows the global importance is averaged over, evenly spaced: TreeSHAP over the whole
holdout of a 30,000-row training set (6,000 rows) would cost as much as the fit. On the batch
benchmark's shop 200 rows keep the order of the six leading features of the whole holdout
(100 rows swapped two of them), in ~0.03 s of CPU for the 7-leaf model."""


@dataclass(frozen=True)
class DemandSet:
    features: np.ndarray
    units: np.ndarray
    naive: np.ndarray  # units the day before
    days: np.ndarray  # date strings
    trained_on: dict[str, int]
    skus: np.ndarray | None = None  # the sku of each row


@dataclass(frozen=True)
class DemandModel:
    model: lgb.LGBMRegressor
    exported: Export
    metrics: dict[str, float]
    holdout: np.ndarray  # feature rows of the holdout
    holdout_units: np.ndarray
    data: DemandSet


def wape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Weighted absolute percentage error: Σ|actual − predicted| / Σ actual.

    >>> wape(np.array([2.0, 2.0]), np.array([1.0, 3.0]))
    0.5
    """
    total = float(np.sum(actual))
    return float(np.sum(np.abs(actual - predicted)) / total) if total > 0 else math.nan


def training_set(settings: Settings, list_prices: dict[str, float]) -> DemandSet:
    """Point-in-time rows for every (sku, complete day) of gold ``sku_daily``."""
    from featurestore.repo import feature_store

    daily = read_all(
        gold_path(settings.lake_dir, SKU_DAILY), ["sku", "date", "day_start", "units", "avg_price"]
    )
    if daily is None or daily.num_rows == 0:
        raise WaitingForData(f"waiting for {MIN_DAYS} complete days of gold sku_daily; 0 so far")
    frame = daily.to_pandas()
    frame = frame[frame["date"] < frame["date"].max()]  # the latest day is still filling
    complete = int(frame["date"].nunique())
    if complete < MIN_DAYS:
        raise WaitingForData(
            f"waiting for {MIN_DAYS} complete days of gold sku_daily; {complete} so far"
        )
    store = feature_store(settings)
    entities = pd.DataFrame({"sku": frame["sku"], "event_timestamp": frame["day_start"]})
    names = [f"{SKU_DAILY_FEATURES}:{f.name}" for f in BATCH_SKU_FEATURES]
    joined = store.get_historical_features(entity_df=entities, features=names).to_df()
    joined = frame.merge(joined, left_on=["sku", "day_start"], right_on=["sku", "event_timestamp"])
    joined = joined[joined["units_1d"].notna()].sort_values(["date", "sku"])
    if joined.empty:
        raise WaitingForData("waiting for a day with sales on the day before it; none so far")
    records: list[dict[str, Any]] = joined.to_dict("records")
    rows = []
    for r in records:
        state = sku_state_from_batch({f.name: r[f.name] for f in BATCH_SKU_FEATURES})
        price = _price(r, list_prices)
        rows.append(demand_features(state, price, r["day_start"] + timedelta(hours=12)))
    return DemandSet(
        features=np.asarray(rows, dtype=np.float32),
        units=joined["units"].to_numpy(dtype=np.float64),
        naive=joined["units_1d"].to_numpy(dtype=np.float64),
        days=joined["date"].to_numpy(),
        trained_on={f"gold/{SKU_DAILY}": table_version(gold_path(settings.lake_dir, SKU_DAILY))},
        skus=joined["sku"].to_numpy(),
    )


def _price(row: dict[str, Any], list_prices: dict[str, float]) -> float:
    for value in (row["avg_price"], row["last_paid_price"]):
        if value is not None and not pd.isna(value) and value > 0:
            return float(value)
    return list_prices.get(row["sku"], 0.0)


def holdout_rows(days: np.ndarray) -> np.ndarray:
    """True for the rows of the last :data:`HOLDOUT_SHARE` of the days.

    >>> holdout_rows(np.array(["d1", "d2", "d2", "d3", "d4", "d5"])).tolist()
    [False, False, False, False, False, True]
    """
    unique = np.unique(days)
    held = max(1, round(len(unique) * HOLDOUT_SHARE)) if len(unique) > 1 else 0
    if held == 0:
        raise WaitingForData(f"waiting for 2 days with a day before them; {len(unique)} so far")
    return np.isin(days, unique[-held:])


def estimator(seed: int = 7) -> lgb.LGBMRegressor:
    """The demand model before its fit (its parameters are the run's)."""
    return lgb.LGBMRegressor(
        objective="poisson",
        n_estimators=TREES,
        learning_rate=0.05,
        num_leaves=LEAVES,
        min_child_samples=20,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.9,
        random_state=seed,
        n_jobs=THREADS,
        verbose=-1,
    )


@dataclass(frozen=True)
class DemandFit:
    """The fitted model before its evaluation and export."""

    model: lgb.LGBMRegressor
    test: np.ndarray  # True for the held-out rows of ``data``
    data: DemandSet

    @property
    def holdout(self) -> np.ndarray:
        rows: np.ndarray = self.data.features[self.test]
        return rows


def fit_demand(data: DemandSet, seed: int = 7) -> DemandFit:
    """Fit on the earlier days (the last :data:`HOLDOUT_SHARE` of the days held out)."""
    test = holdout_rows(data.days)
    model = estimator(seed)
    model.fit(data.features[~test], data.units[~test])
    return DemandFit(model, test, data)


def evaluate_demand(
    fit: DemandFit, checked: Callable[[Checked], None] = lambda _: None
) -> DemandModel:
    """Evaluate on the held-out days against the naive forecast; export to ONNX (``checked``
    receives the export once it is loaded and compared: :func:`batch.onnx_export.export`)."""
    data, test, model = fit.data, fit.test, fit.model
    held = len(np.unique(data.days[test]))
    predicted = np.asarray(model.predict(fit.holdout))
    model_wape = wape(data.units[test], predicted)
    naive_wape = wape(data.units[test], data.naive[test])
    exported = export(model, fit.holdout, checked=checked)
    metrics = {
        "wape": model_wape,
        "wape_naive": naive_wape,
        "wape_vs_naive": model_wape / naive_wape if naive_wape else math.nan,
        "onnx_max_abs_diff": exported.max_abs_diff,
        "train_rows": float((~test).sum()),
        "holdout_rows": float(test.sum()),
        "holdout_days": float(held),
    }
    log.info("demand.trained", **{k: round(v, 4) for k, v in metrics.items()})
    return DemandModel(model, exported, metrics, fit.holdout, data.units[test], data)


def train_demand(data: DemandSet, seed: int = 7) -> DemandModel:
    """Fit on the earlier days, evaluate on the last ones, export to ONNX."""
    return evaluate_demand(fit_demand(data, seed))


def importance_sample(rows: np.ndarray, size: int = IMPORTANCE_ROWS) -> np.ndarray:
    """At most ``size`` of ``rows``, evenly spaced from the first to the last.

    >>> importance_sample(np.arange(10).reshape(10, 1), 4).ravel().tolist()
    [0, 3, 6, 9]
    """
    if len(rows) <= size:
        return rows
    picked: np.ndarray = rows[np.linspace(0, len(rows) - 1, size).round().astype(int)]
    return picked


def importance(booster: lgb.Booster, holdout: np.ndarray) -> dict[str, float]:
    """Mean |contribution| per feature over a sample of the holdout rows. The fitted booster
    and the one the export rounds its thresholds of (:mod:`batch.onnx_export`) split every
    float32 row alike, so either gives the same figures: the fitted one lets the importance be
    computed while the export runs."""
    explainer = Explainer(booster, DEMAND_FEATURES)
    return explainer.global_importance(importance_sample(holdout))


def plot(ranked: dict[str, float]) -> bytes:
    """The plot (SVG) of a global :func:`importance`; its title names the sample it is
    averaged over."""
    return importance_svg(
        ranked, title=f"{MODEL} (≤ {IMPORTANCE_ROWS} holdout rows, evenly spaced)"
    )


def files(meta: dict[str, Any]) -> dict[str, bytes]:
    """Files stored with the version beside the model: its global importance plot."""
    return {IMPORTANCE_FILE: plot(meta["importance"])}


def description(data: DemandSet) -> dict[str, Any]:
    """What a version's metadata says before the fit: features, data versions, model kind."""
    return {
        "features": list(DEMAND_FEATURES),
        "trained_on": data.trained_on,
        "model_type": "lightgbm.LGBMRegressor(poisson)",
        "target": "units per sku-day",
        "holdout": "last 20% of complete days",
    }


def metadata(trained: DemandModel, ranked: dict[str, float] | None = None) -> dict[str, Any]:
    """The version's metadata; ``ranked`` the global :func:`importance` when it was computed
    already (else it is computed here)."""
    return {
        **description(trained.data),
        "metrics": trained.metrics,
        "importance": importance(trained.model.booster_, trained.holdout)
        if ranked is None
        else ranked,
    }


def list_prices(catalogue: pa.Table) -> dict[str, float]:
    return dict(
        zip(
            catalogue.column("sku").to_pylist(),
            catalogue.column("list_price").to_pylist(),
            strict=True,
        )
    )
