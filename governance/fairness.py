"""The fairness audit's figures: one metric per group, and how far apart the groups are.

Pure functions over pandas frames; :mod:`batch.audit` gathers the frames from the lake, the
registry and Redis. Each check computes a metric per group with Fairlearn's ``MetricFrame``
and its between-group ratio (lowest ÷ highest, 1 = every group alike). A check *breaches*
when that ratio falls below its threshold (``Settings.audit_min_ratio_*``). Groups with fewer
than ``min_rows`` rows are reported but left out of the ratio: a handful of rows is noise.

The checks:

- ``demand_error``: WAPE of the demand model by ``store`` and by ``category`` (the ratio is
  the best group's WAPE over the worst's);
- ``exposure``: a group's share of the recommended slots over its share of the catalogue, by
  ``category`` and ``brand`` (1 = recommended as often as it is stocked);
- ``hit_rate``: share of shoppers who bought one of their top-10 recommendations, by
  ``segment`` (new or returning) and by ``store``;
- ``price_change``: mean absolute relative price change by ``category``, and the price index
  (price paid ÷ list price, units-weighted) by ``store``.

>>> frame = pd.DataFrame({"store": ["a", "a", "b", "b"], "actual": [2.0, 2.0, 4.0, 4.0],
...                       "predicted": [1.0, 3.0, 4.0, 4.0]})
>>> figures = demand_error(frame, ["store"], min_rows=1)
>>> [(f.group, f.value) for f in figures.groups]
[('a', 0.5), ('b', 0.0)]
>>> figures.summary[0].ratio
0.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

NO_GROUP = "(none)"


@dataclass(frozen=True)
class GroupFigure:
    """One group's metric in one check."""

    check: str
    dimension: str
    group: str
    metric: str
    value: float
    rows: int


@dataclass(frozen=True)
class Disparity:
    """How far apart one check's groups are along one dimension."""

    check: str
    dimension: str
    metric: str
    ratio: float  # lowest ÷ highest over the groups with enough rows; nan with fewer than two
    lowest: str
    highest: str
    groups: int
    threshold: float = math.nan
    breached: bool = False


@dataclass(frozen=True)
class Figures:
    groups: list[GroupFigure] = field(default_factory=list)
    summary: list[Disparity] = field(default_factory=list)

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.groups + other.groups, self.summary + other.summary)


def ratio_of_sums(numerator: Any, denominator: Any) -> float:
    """Σ numerator ÷ Σ denominator (nan when the denominator sums to 0).

    >>> ratio_of_sums(np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    0.5
    """
    total = float(np.sum(denominator))
    return float(np.sum(numerator)) / total if total else math.nan


def by_groups(
    check: str,
    metric: str,
    frame: pd.DataFrame,
    dimensions: Sequence[str],
    numerator: str,
    denominator: str,
    min_rows: int,
) -> Figures:
    """Σ ``numerator`` ÷ Σ ``denominator`` per group of each dimension, and the ratio between
    the groups.

    Every metric of the audit is such a ratio of sums (WAPE = Σ|error| ÷ Σ actual, a rate =
    Σ hits ÷ Σ 1, ...), so each group's sums are its sufficient statistics: Fairlearn's
    ``MetricFrame`` gets one row per group with them and gives the same figure as over the
    rows, without a Python call per row (its per-row path took ~50 s for 1M rows).
    """
    out = Figures()
    for dimension in dimensions:
        groups = frame[dimension].fillna(NO_GROUP).astype(str).rename(dimension)
        sums = frame[[numerator, denominator]].groupby(groups).sum()
        rows = groups.value_counts()
        mf = MetricFrame(
            metrics={metric: ratio_of_sums},
            y_true=sums[numerator].to_numpy(dtype=np.float64),
            y_pred=sums[denominator].to_numpy(dtype=np.float64),
            sensitive_features=pd.Series(sums.index, name=dimension),
        )
        figures = [
            GroupFigure(check, dimension, str(group), metric, float(value), int(rows[group]))
            for group, value in mf.by_group[metric].items()
        ]
        out = out + Figures(figures, [_disparity(check, dimension, metric, figures, min_rows)])
    return out


def _disparity(
    check: str, dimension: str, metric: str, figures: list[GroupFigure], min_rows: int
) -> Disparity:
    kept = [f for f in figures if f.rows >= min_rows and not math.isnan(f.value)]
    if len(kept) < 2:
        return Disparity(check, dimension, metric, math.nan, "", "", len(kept))
    low = min(kept, key=lambda f: f.value)
    high = max(kept, key=lambda f: f.value)
    ratio = 1.0 if high.value == low.value else (low.value / high.value if high.value else 0.0)
    return Disparity(check, dimension, metric, ratio, low.group, high.group, len(kept))


def demand_error(frame: pd.DataFrame, dimensions: Sequence[str], min_rows: int) -> Figures:
    """WAPE per group; ``frame`` has ``actual``, ``predicted`` and the dimension columns."""
    data = frame.assign(_error=(frame["actual"] - frame["predicted"]).abs())
    return by_groups("demand_error", "wape", data, dimensions, "_error", "actual", min_rows)


def exposure(
    shown: pd.DataFrame, catalogue: pd.DataFrame, dimensions: Sequence[str], min_rows: int
) -> Figures:
    """Share of recommended slots ÷ share of the catalogue, per group.

    ``shown`` has one row per recommended slot (``sku`` and the dimension columns);
    ``catalogue`` one row per product. ``rows`` counts the group's slots.
    """
    out = Figures()
    for dimension in dimensions:
        slots = shown[dimension].fillna(NO_GROUP).astype(str)
        stock_share = catalogue[dimension].fillna(NO_GROUP).astype(str).value_counts(normalize=True)
        per_group = slots.map(slots.value_counts())
        frame = pd.DataFrame(
            {
                dimension: slots,
                "slot_share": 1.0 / max(len(slots), 1),
                # each slot carries its share of the group's catalogue share: they sum to it
                "stock_share": slots.map(stock_share).fillna(0.0) / per_group,
            }
        )
        out = out + by_groups(
            "exposure", "exposure_ratio", frame, [dimension], "slot_share", "stock_share", min_rows
        )
    return out


def hit_rate(frame: pd.DataFrame, dimensions: Sequence[str], min_rows: int) -> Figures:
    """Share of shoppers with a hit; ``frame`` has one row per shopper and a 0/1 ``hit``."""
    data = frame.assign(_one=1.0)
    return by_groups("hit_rate", "hit_rate_at_10", data, dimensions, "hit", "_one", min_rows)


def price_change(changes: pd.DataFrame, dimensions: Sequence[str], min_rows: int) -> Figures:
    """Mean |relative change| per group; ``changes`` has one row per published change."""
    data = changes.assign(_abs=changes["relative_change"].abs(), _one=1.0)
    return by_groups("price_change", "mean_abs_change", data, dimensions, "_abs", "_one", min_rows)


def price_index(lines: pd.DataFrame, dimensions: Sequence[str], min_rows: int) -> Figures:
    """Price paid ÷ list price, weighted by units, per group; ``lines`` has ``unit_price``,
    ``list_price`` and ``quantity`` per order line. tillflow sets one price per product for
    every store and shopper: differences here come from what and when each group buys."""
    data = lines[lines["list_price"] > 0]
    data = data.assign(
        _paid=data["unit_price"] / data["list_price"] * data["quantity"],
        _units=data["quantity"].astype(float),
    )
    return by_groups("price_change", "price_index", data, dimensions, "_paid", "_units", min_rows)


def judged(figures: Figures, thresholds: dict[str, float]) -> Figures:
    """Each disparity with its check's threshold and whether the ratio falls below it."""
    summary = []
    for d in figures.summary:
        threshold = thresholds.get(d.check, math.nan)
        breached = not math.isnan(d.ratio) and not math.isnan(threshold) and d.ratio < threshold
        summary.append(
            Disparity(
                d.check,
                d.dimension,
                d.metric,
                d.ratio,
                d.lowest,
                d.highest,
                d.groups,
                threshold,
                breached,
            )
        )
    return Figures(figures.groups, summary)
