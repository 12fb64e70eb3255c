"""Batch benchmark: 1M simulated events, bronze → silver → gold → features → both models.

Bronze is filled once, straight from the simulator (benchmarks/batch_data.py; the flow's own
throughput is benchmarks/stream.py), with daily price experiments. Each repeat then deletes
silver, gold, the Feast export and the registry and runs the jobs' stages in this process, as
``tillflow batch pipeline`` does: silver, gold, features (export + Feast materialisation to the
real Redis), training (Feast point-in-time set, LightGBM, ONNX export and parity check,
registration). Imports happen before the clock starts; ``startup_s`` measures them apart in a
fresh interpreter. ``pipeline_cpu_seconds`` is the process's CPU time, since the 2 cores are
shared with other work.

Baselines in the same run: the naive "same as yesterday" forecast (WAPE), the popularity list
(HR@10, NDCG@10) and the native LightGBM model (one-row latency).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from batch.catalogue_source import catalogue_table
from batch.features import run_features
from batch.gold import run_gold
from batch.silver import run_silver
from batch.training import train_models
from benchmarks.batch_data import fill_bronze
from benchmarks.common import Mode, median, parse_mode, print_repeat, write_result
from infra.readiness import require_redis
from schemas.settings import Settings
from simulator.config import ShopConfig
from simulator.shop import Shop

EVENTS = 1_000_000
REPEATS = 3


def startup_seconds() -> float:
    """Wall time of importing the pipeline's modules (Feast, LightGBM, …) in a new process."""
    code = "import batch.training, batch.features, featurestore.repo, batch.gold"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def one_run(settings: Settings, catalogue: object) -> dict[str, float]:
    lake = settings.lake_dir
    for leftover in (lake / "silver", lake / "gold", settings.registry_dir):
        shutil.rmtree(leftover, ignore_errors=True)
    figures: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    t = time.perf_counter()
    run_silver(lake)
    figures["silver_s"] = time.perf_counter() - t
    t = time.perf_counter()
    run_gold(lake, catalogue)
    figures["gold_s"] = time.perf_counter() - t
    t = time.perf_counter()
    run_features(settings)
    figures["features_s"] = time.perf_counter() - t
    t = time.perf_counter()
    trained = train_models(settings, catalogue)
    figures["train_s"] = time.perf_counter() - t
    figures["pipeline_seconds_1m_events"] = time.perf_counter() - wall
    figures["pipeline_cpu_seconds"] = time.process_time() - cpu
    demand, ranker = trained.demand, trained.ranker
    figures.update(
        onnx_max_abs_diff=max(demand.exported.max_abs_diff, ranker.exported.max_abs_diff),
        demand_wape=demand.metrics["wape"],
        demand_wape_naive=demand.metrics["wape_naive"],
        demand_wape_vs_naive=demand.metrics["wape_vs_naive"],
        onnx_row_us=demand.exported.onnx_row_us,
        native_row_us=demand.exported.native_row_us,
        ranker_onnx_row_us=ranker.exported.onnx_row_us,
        ranker_native_row_us=ranker.exported.native_row_us,
        ranker_hr_at_10=ranker.metrics["hr_at_10"],
        ranker_hr_at_10_popularity=ranker.metrics["hr_at_10_popularity"],
        ranker_ndcg_at_10=ranker.metrics["ndcg_at_10"],
        ranker_ndcg_at_10_popularity=ranker.metrics["ndcg_at_10_popularity"],
    )
    return figures


def main(mode: Mode) -> None:
    events_n, repeats = mode.size(EVENTS, 60_000), mode.size(REPEATS, 1)
    root = Path(tempfile.mkdtemp(prefix="tillflow-batch-bench-"))
    settings = Settings(
        lake_dir=root / "lake",
        registry_dir=root / "models",
        runtime_dir=root / "runtime",
        lineage_file=root / "lineage.jsonl",
        redis_prefix=f"bench-batch-{uuid.uuid4().hex[:6]}:",
        mlflow_model_prefix=mode.model_prefix,
    )
    require_redis(settings)
    config = ShopConfig(sessions_per_day=2_000) if mode.smoke else ShopConfig()  # days to train
    try:
        start = time.perf_counter()
        counts = fill_bronze(settings.lake_dir, events_n, config)
        print(f"bronze: {counts} in {time.perf_counter() - start:.0f}s (not timed)")
        catalogue = catalogue_table(Shop(config).catalogue())
        runs: dict[str, list[float]] = {"startup_s": [startup_seconds()]}
        for repeat in range(repeats):
            for key, value in one_run(settings, catalogue).items():
                runs.setdefault(key, []).append(value)
            print_repeat(repeat, repeats, runs)
        figures = {k: median(v) for k, v in runs.items()}
        figures["events"] = float(sum(counts.values()))
        path = write_result("batch", figures, {**runs, "repeats": repeats}, mode)
        print(f"wrote {path}")
        # The serving benchmark serves these models (the ones this run trained on 1M events).
        shutil.rmtree(mode.models, ignore_errors=True)
        shutil.copytree(settings.registry_dir, mode.models)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(parse_mode(__doc__))
