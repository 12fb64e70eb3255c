"""Governance benchmark: what model governance costs next to the work it governs.

The figures come from independent sections, each a function returning its own figures (and
its runs); :func:`main` merges them into one ``governance.json``. Sections:

- :func:`tracking_figures`: the demand model's training on a synthetic sku-day set of the
  size the batch benchmark trains on, in three arms: *without tracking*
  (:func:`train_untracked`: the production ``train_demand`` — LightGBM fit, ONNX export and
  parity check — and the promotion gate, which scores the champion on the holdout and compares
  the errors: the job as it runs without a tracking server), *with tracking* (what the
  ``train`` job runs, ``batch.training.train_and_register_demand``: the same training and gate
  while the MLflow run is opened with its parameters and data versions and the champion is
  scored on another thread, then the global importance and its plot, the metrics and the ONNX
  model with its signature, the registered version and its alias) and *bare* (the fit, export
  and parity check alone). Each round runs the three, each arm leading in turn and starting
  after a garbage collection, after a tracked training that registers the champion and a
  warm-up round that is not counted (first connections, sessions and caches, once per
  process).
  ``tracking_overhead_ratio`` is the median over the rounds of with / without in wall time
  (goal ≤ 1.10; ``tracking_method`` says so in the JSON, ``_min`` and ``_max`` the spread of
  the paired ratios, ``_ci90`` a 90 % bootstrap interval of the median, ``meta.runs.tracking``
  every round), ``tracking_overhead_cpu_ratio`` the same in this process's CPU time (its
  threads included), ``tracking_overhead_cpu_with_server_ratio`` in that CPU plus the local
  MLflow server's during each training (``train_server_cpu_s_*``; its CPU during the untracked
  arms is what it spends on other clients and on itself meanwhile);
  ``governance_overhead_ratio`` (and ``_cpu_``) is with / bare: everything the job adds to the
  model's own fit, the gate's scoring of the champion included. Importing ``mlflow`` happens
  once per training process and is reported apart (``tracking_import_s``), not in the ratio;
  so is Feast (``feast_import_s``), which the training job loads anyway.

- :func:`explain_figures`: a demand model trained and exported by the production code
  (``batch.demand.train_demand``: 300 trees of 7 leaves, the 12 demand features), explained
  with LightGBM's ``pred_contrib`` from its registered native booster.
  ``explain_ms_per_row`` is one row per call through ``Explainer.explain_row`` with its cache
  off, as the pricing detail explains a forecast it has not explained before (goal ≤ 1 ms);
  ``explain_cached_ms_per_row`` the same rows again, answered from the explainer's cache;
  ``explain_batch_ms_per_row`` is 1,000 rows per call (100 in a smoke run); each with its
  CPU time beside it. The baselines are the forecast itself, one row through ONNX Runtime
  (what the API serves) and through the native booster.
- :func:`audit_figures`: the audit's computation (``batch.audit.audit``: Fairlearn
  ``MetricFrame`` per check and dimension, then the gold rows, appended to a Delta table) on
  the inputs a shop of 1M events gives: 1M order lines (price index by store; demand error by
  category and store on their sku-day totals), 1M recommended slots (100k shoppers × 10) and
  100k price changes. Goal ``audit_s_1m_events`` ≤ 30 s. Baseline: the same per-group
  numbers by a plain pandas ``groupby`` (``audit_pandas_s``).

The tracking section needs the MLflow server of ``tillflow up``. ``--section tracking`` (or
``explain``, ``audit``; repeatable) measures only those sections and replaces only their figures
in ``governance.json``, keeping the others' (``meta.runs.sections`` says when each was measured).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from batch import demand
from batch.audit import audit, audit_table
from batch.audit_inputs import AuditInputs
from batch.demand import DemandSet, train_demand
from batch.lake import append
from batch.onnx_export import onnx_scores, session
from batch.promotion import champion_scores
from batch.training import train_and_register_demand
from benchmarks.common import Mode, median, print_repeat, tree_cpu_s, write_result
from governance.explain import Explainer
from infra.readiness import require_mlflow
from infra.stack import mlflow as mlflow_service
from infra.stack.processes import running_pid
from online_models.demand_features import DEMAND_FEATURES
from registry import ModelRegistry, ModelVersion
from schemas.lake import SKU_DAILY
from schemas.settings import Settings

SKUS, DAYS = 600, 50  # 30,000 sku-days
# Rounds of the three trainings (with, without tracking, bare). One pair's ratio spreads by
# ±15 % on quiet cores, so the median of 11 pairs moved by ±0.06 from run to run; 31 pin it
# to about ±0.03 (``tracking_overhead_ratio_ci90``).
REPEATS = 31

Section = Callable[[Mode], tuple[dict[str, Any], dict[str, Any]]]


def demand_set(skus: int, days: int, seed: int = 3) -> DemandSet:
    """Synthetic sku-days: units depend on price and on the day before, like the shop's."""
    rng = np.random.default_rng(seed)
    rows = skus * days
    features = rng.uniform(0.0, 10.0, size=(rows, len(DEMAND_FEATURES))).astype(np.float32)
    rate = np.exp(0.15 * features[:, 1] - 0.1 * features[:, 0] + 0.5)
    units = rng.poisson(rate).astype(np.float64)
    return DemandSet(
        features=features,
        units=units,
        naive=rng.poisson(rate).astype(np.float64),
        days=np.repeat([f"2026-01-{d:03d}" for d in range(days)], skus),
        trained_on={f"gold/{SKU_DAILY}": 1},
    )


def _imports() -> dict[str, list[float]]:
    """Wall and CPU seconds of what a training process imports once for tracking: ``mlflow``
    (with the ONNX flavour and pyfunc, which ``mlflow.onnx.save_model`` loads); Feast apart
    (the training job has it loaded anyway for its training set)."""
    runs: dict[str, list[float]] = {}
    start, cpu = time.perf_counter(), time.process_time()
    import mlflow.onnx
    import mlflow.pyfunc  # noqa: F401 - what mlflow.onnx.save_model loads on first use

    runs["tracking_import_s"] = [time.perf_counter() - start]
    runs["tracking_import_cpu_s"] = [time.process_time() - cpu]
    start, cpu = time.perf_counter(), time.process_time()
    import featurestore.repo  # noqa: F401

    runs["feast_import_s"] = [time.perf_counter() - start]
    runs["feast_import_cpu_s"] = [time.process_time() - cpu]
    return runs


TRACKING_METHOD = (
    "median of paired ratios: after one uncounted round, each round trains once with "
    "tracking, once without (the job with its promotion gate, no MLflow) and once bare (fit, "
    "export, parity only), each arm leading in turn and starting after a garbage collection; "
    "a ratio is with / without (or with / bare) within the round; the _with_server CPU ratio "
    "adds the local MLflow server's CPU during each training to the process's"
)


def train_untracked(
    data: DemandSet, champion: ModelVersion | None
) -> tuple[demand.DemandModel, bool]:
    """The training job without tracking, and whether its model would be promoted: fit,
    export and parity check (``batch.demand.train_demand``), then the promotion gate, which
    scores the champion on the same holdout through the same ONNX runtime as the tracked job
    (its session loaded once per process on both sides) and compares the two errors. The
    tracked job does all of this too; what it adds is the tracking: the MLflow run, the global
    importance and its plot, the model folder, the registered version and its alias."""
    fitted = train_demand(data)
    scores = champion_scores(
        champion, list(DEMAND_FEATURES), fitted.holdout, fitted.exported.output
    )
    new = demand.wape(fitted.holdout_units, fitted.exported.check_scores)
    return fitted, scores is None or new < demand.wape(fitted.holdout_units, scores)


def paired_ratios(with_: list[float], without: list[float]) -> list[float]:
    """with / without of each alternation: a pair runs within seconds, so a change of the
    shared machine's load between pairs moves both of its trainings and cancels out.

    >>> paired_ratios([1.1, 2.2], [1.0, 2.0])
    [1.1, 1.1]
    """
    return [round(w / o, 12) for w, o in zip(with_, without, strict=True)]


def median_ci90(values: list[float], draws: int = 2000, seed: int = 11) -> list[float]:
    """A 90 % bootstrap interval of the median of ``values`` (seeded: the same values give
    the same interval).

    >>> median_ci90([1.0, 1.0, 1.0])
    [1.0, 1.0]
    """
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(draws, len(values))), axis=1)
    return [round(float(q), 4) for q in np.quantile(medians, [0.05, 0.95])]


def server_pid(settings: Settings) -> int | None:
    """The local MLflow server's process (``tillflow up``'s pid file), whose CPU a tracked
    training spends too; None when it is not running from this checkout."""
    return running_pid(mlflow_service.files(settings))


def tracking_figures(mode: Mode) -> tuple[dict[str, Any], dict[str, Any]]:
    """``train_s_without_tracking``, ``train_s_with_tracking`` (medians) and
    ``tracking_overhead_ratio``: the median of the paired wall ratios (:data:`TRACKING_METHOD`),
    with their spread; the same in this process's CPU time, and in that CPU plus the local
    MLflow server's (``_cpu_with_server_``: what a shop's machine spends on a training)."""
    skus, repeats = mode.size(SKUS, 40), mode.size(REPEATS, 1)
    settings = Settings(
        registry_dir=Path(tempfile.mkdtemp(prefix="tillflow-governance-bench-")),
        mlflow_model_prefix=f"bench-governance-{uuid.uuid4().hex[:6]}-",
    )
    require_mlflow(settings)
    registry = ModelRegistry.from_settings(settings)
    data = demand_set(skus, DAYS)
    runs: dict[str, Any] = _imports()
    train_and_register_demand(settings, registry, data)  # the registered model, a champion
    champion = registry.current(demand.MODEL)  # what an untracked job keeps beside its model
    arms: dict[str, Callable[[], demand.DemandModel]] = {
        "without_tracking": lambda: train_untracked(data, champion)[0],
        "with_tracking": lambda: train_and_register_demand(settings, registry, data)[0],
        "bare": lambda: train_demand(data),
    }
    order = list(arms)
    server = server_pid(settings)
    for arm in order[: mode.size(3, 0)]:  # warm-up round: first connections, sessions, caches
        arms[arm]()
    for repeat in range(repeats):
        for label in order[repeat % 3 :] + order[: repeat % 3]:  # each arm leads in turn
            gc.collect()  # no arm pays for the garbage of the one before
            served = tree_cpu_s(server) if server else 0.0
            start, cpu = time.perf_counter(), time.process_time()
            fitted = arms[label]()
            runs.setdefault(f"train_s_{label}", []).append(time.perf_counter() - start)
            runs.setdefault(f"train_cpu_s_{label}", []).append(time.process_time() - cpu)
            if server:
                served = tree_cpu_s(server) - served
                runs.setdefault(f"train_server_cpu_s_{label}", []).append(served)
                runs.setdefault(f"train_cpu_with_server_s_{label}", []).append(
                    runs[f"train_cpu_s_{label}"][-1] + served
                )
        print_repeat(repeat, repeats, runs)
    figures: dict[str, Any] = {k: median(v) for k, v in runs.items()}
    for kind, ratio, base in (
        ("s", "tracking_overhead_ratio", "without_tracking"),
        ("cpu_s", "tracking_overhead_cpu_ratio", "without_tracking"),
        ("cpu_with_server_s", "tracking_overhead_cpu_with_server_ratio", "without_tracking"),
        ("s", "governance_overhead_ratio", "bare"),
        ("cpu_s", "governance_overhead_cpu_ratio", "bare"),
    ):
        if f"train_{kind}_{base}" not in runs:
            continue  # no local MLflow server to measure
        paired = paired_ratios(runs[f"train_{kind}_with_tracking"], runs[f"train_{kind}_{base}"])
        runs[f"{ratio}_paired"] = paired
        figures[ratio] = median(paired)
        figures[f"{ratio}_min"], figures[f"{ratio}_max"] = min(paired), max(paired)
        figures[f"{ratio}_ci90"] = median_ci90(paired)
    figures["tracking_train_rows"] = float(len(data.units))
    figures["tracking_model_wape"] = fitted.metrics["wape"]
    figures["load_1m"] = os.getloadavg()[0]
    return {**figures, "tracking_method": TRACKING_METHOD}, {
        "tracking": runs,
        "tracking_repeats": repeats,
    }


def _per_call_ms(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of one call, in ms."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        timings.append((time.perf_counter() - start) * 1e3)
    return float(statistics.median(timings))


def _cpu_ms(call: Callable[[], object], repeats: int) -> float:
    """Mean CPU time of this process per call, in ms: what a call costs when the shared
    machine's other processes stretch its wall time."""
    start = time.process_time()
    for _ in range(repeats):
        call()
    return (time.process_time() - start) * 1e3 / repeats


def _demand_set(rows: int, seed: int = 3) -> DemandSet:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (rows, len(DEMAND_FEATURES))).astype(np.float32)
    price = DEMAND_FEATURES.index("price")
    x[:, price] = rng.uniform(2, 20, rows)
    units = rng.poisson(np.exp(2.2 - 0.12 * x[:, price] + x[:, 4])).astype(np.float64)
    days = np.repeat(np.arange(10), rows // 10 + 1)[:rows].astype(str)
    return DemandSet(x, units, np.roll(units, 1), days, {})


def explain_figures(mode: Mode) -> dict[str, float]:
    data = _demand_set(mode.size(20_000, 2_000))
    trained = train_demand(data)
    booster = lgb.Booster(model_str=trained.exported.native)
    cold = Explainer(booster, DEMAND_FEATURES, cached_rows=0)
    warm = Explainer(booster, DEMAND_FEATURES)
    sess = session(trained.exported.onnx)
    rows = data.features[: mode.size(1_000, 100)]
    repeats, batches = mode.size(2_000, 100), mode.size(5, 1)
    picks = iter(np.resize(np.arange(len(rows)), repeats * 8))

    def one() -> np.ndarray:
        i = next(picks)
        return rows[i : i + 1]

    for row in rows:
        warm.explain_row(row)
    return {
        "explain_ms_per_row": _per_call_ms(lambda: cold.explain_row(one()), repeats),
        "explain_cpu_ms_per_row": _cpu_ms(lambda: cold.explain_row(one()), repeats),
        "explain_cached_ms_per_row": _per_call_ms(lambda: warm.explain_row(one()), repeats),
        "explain_cached_cpu_ms_per_row": _cpu_ms(lambda: warm.explain_row(one()), repeats),
        "explain_batch_ms_per_row": _per_call_ms(lambda: cold.explain(rows), batches) / len(rows),
        "explain_batch_cpu_ms_per_row": _cpu_ms(lambda: cold.explain(rows), batches) / len(rows),
        "forecast_onnx_ms_per_row": _per_call_ms(
            lambda: onnx_scores(sess, trained.exported.output, one()), repeats
        ),
        "forecast_native_ms_per_row": _per_call_ms(
            lambda: booster.predict(one(), num_threads=1), repeats
        ),
        "explain_trees": float(booster.num_trees()),
        "explain_model_wape": trained.metrics["wape"],
    }


def audit_inputs(events: int, seed: int = 5) -> AuditInputs:
    """The audit's inputs from ``events`` order lines, as many recommended slots and a tenth
    as many price changes, over 2,000 products in 40 categories, 60 brands and 12 stores."""
    rng = np.random.default_rng(seed)
    skus = np.array([f"SKU-{i:05d}" for i in range(2_000)])
    catalogue = pd.DataFrame(
        {
            "sku": skus,
            "category": [f"c{i % 40}" for i in range(2_000)],
            "brand": [f"b{i % 60}" for i in range(2_000)],
            "list_price": rng.uniform(2, 30, 2_000),
        }
    )
    sku = rng.integers(0, 2_000, events)
    lines = pd.DataFrame(
        {
            "store": rng.choice([f"s{i}" for i in range(12)], events),
            "sku": skus[sku],
            "date": rng.integers(0, 28, events).astype(str),
            "quantity": rng.integers(1, 4, events),
            "list_price": catalogue["list_price"].to_numpy()[sku],
        }
    )
    lines["unit_price"] = lines["list_price"] * rng.uniform(0.8, 1.2, events)
    lines["category"] = catalogue["category"].to_numpy()[sku]
    daily = lines.groupby(["sku", "date", "category"], as_index=False)["quantity"].sum()
    daily = daily.rename(columns={"quantity": "actual"})
    daily["predicted"] = daily["actual"] * rng.uniform(0.7, 1.3, len(daily))
    by_store = lines.groupby(["store", "sku", "date"], as_index=False)["quantity"].sum()
    by_store = by_store.rename(columns={"quantity": "actual"})
    by_store["predicted"] = by_store["actual"] * rng.uniform(0.7, 1.3, len(by_store))
    slot_skus = skus[rng.zipf(1.3, events) % 2_000]
    slots = pd.DataFrame({"sku": slot_skus}).merge(catalogue[["sku", "category", "brand"]])
    shoppers = pd.DataFrame(
        {
            "hit": rng.integers(0, 2, events // 10).astype(float),
            "segment": rng.choice(["new", "returning"], events // 10),
            "store": rng.choice([f"s{i}" for i in range(12)], events // 10),
        }
    )
    changes = pd.DataFrame(
        {
            "category": rng.choice(catalogue["category"], events // 10),
            "relative_change": rng.normal(0, 0.04, events // 10),
        }
    )
    return AuditInputs(daily, by_store, slots, shoppers, catalogue, changes, lines, {})


def _pandas_audit(inputs: AuditInputs) -> list[pd.Series]:
    """The same per-group numbers with plain pandas (the baseline)."""

    def wape(frame: pd.DataFrame, by: str) -> pd.Series:
        errors = (frame["actual"] - frame["predicted"]).abs().groupby(frame[by]).sum()
        return errors / frame.groupby(by)["actual"].sum()

    out = [wape(inputs.demand_rows, "category"), wape(inputs.demand_by_store, "store")]
    for by in ("category", "brand"):
        share = inputs.slots[by].value_counts(normalize=True)
        out.append(share / inputs.catalogue[by].value_counts(normalize=True))
    out += [inputs.shoppers.groupby(by)["hit"].mean() for by in ("segment", "store")]
    out.append(inputs.changes["relative_change"].abs().groupby(inputs.changes["category"]).mean())
    lines = inputs.lines
    index = (lines["unit_price"] / lines["list_price"] * lines["quantity"]).groupby(lines["store"])
    out.append(index.sum() / lines.groupby("store")["quantity"].sum())
    return out


def audit_figures(mode: Mode) -> dict[str, float]:
    events = mode.size(1_000_000, 20_000)
    inputs = audit_inputs(events)
    settings = Settings()
    repeats = mode.size(3, 1)
    timings, cpu, groups = [], [], 0

    with tempfile.TemporaryDirectory() as lake:
        for i in range(repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            figures = audit(inputs, settings)
            table = audit_table(figures, f"bench{i}", datetime.now(UTC), inputs.models)
            append(Path(lake) / "fairness_audit", table, marks={}, partition_by=["date"])
            timings.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
            groups = table.num_rows
    pandas_s = _per_call_ms(lambda: _pandas_audit(inputs), repeats) / 1e3
    pandas_cpu_s = _cpu_ms(lambda: _pandas_audit(inputs), repeats) / 1e3
    audit_s = float(statistics.median(timings))
    return {
        "audit_s_1m_events": audit_s,  # at audit_events (20,000 in a smoke run)
        "audit_cpu_s_1m_events": float(statistics.median(cpu)),
        "audit_pandas_s": pandas_s,
        "audit_pandas_cpu_s": pandas_cpu_s,
        "audit_load_1m": os.getloadavg()[0],
        "audit_vs_pandas": audit_s / pandas_s if pandas_s else float("nan"),
        "audit_events": float(events),
        "audit_groups": float(groups),
    }


def explain_section(mode: Mode) -> tuple[dict[str, float], dict[str, Any]]:
    return explain_figures(mode), {}


def audit_section(mode: Mode) -> tuple[dict[str, float], dict[str, Any]]:
    return audit_figures(mode), {}


SECTIONS: dict[str, Section] = {
    "tracking": tracking_figures,
    "explain": explain_section,
    "audit": audit_section,
}


def main(mode: Mode, sections: list[str]) -> None:
    """Measure ``sections`` and write them into ``governance.json``: the figures and runs of the
    sections not measured now are kept from the file as it was."""
    path = mode.results / "governance.json"
    kept = json.loads(path.read_text()) if path.exists() and set(sections) != set(SECTIONS) else {}
    runs: dict[str, Any] = kept.get("meta", {}).get("runs", {})
    measured = runs.setdefault("sections", {})
    for name in set(SECTIONS) - set(sections) - set(measured) if kept else ():
        measured[name] = kept["meta"]["measured_at"]  # kept from a run of every section
    figures = {k: v for k, v in kept.items() if k != "meta"}
    for name in sections:
        got, section_runs = SECTIONS[name](mode)
        print(
            ", ".join(
                f"{k}={v:,.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in got.items()
            )
        )
        figures.update(got)
        runs.update(section_runs)
        measured[name] = datetime.now(UTC).isoformat(timespec="seconds")
    runs["repeats"] = max((v for k, v in runs.items() if k.endswith("_repeats")), default=1)
    print(f"wrote {write_result('governance', figures, runs, mode)}")


def parse_args(argv: list[str] | None = None) -> tuple[Mode, list[str]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny size, results to a temp dir")
    parser.add_argument(
        "--section",
        action="append",
        choices=list(SECTIONS),
        help="measure only this section (repeatable); the others' figures are kept",
    )
    args = parser.parse_args(argv)
    return Mode(smoke=args.smoke), args.section or list(SECTIONS)


if __name__ == "__main__":
    main(*parse_args())
