"""Batch benchmark: 1M simulated events, bronze → silver → gold → features → both models.

Bronze is filled once, straight from the simulator (benchmarks/batch_data.py; the flow's own
throughput is benchmarks/stream.py), with daily price experiments. Each repeat then deletes
silver, gold, the Feast export and the registry and runs the jobs' stages in this process, as
``tillflow batch pipeline`` does: silver, gold, features (export + Feast materialisation to the
real Redis), training (Feast point-in-time set, LightGBM, ONNX export and parity check,
registration). After the repeats the item factors for the discover lists are fitted once on the
last repeat's silver (untimed) and published with the models, where the serving benchmark
serves both from (``.tillflow/bench-models``). Imports happen before the clock starts;
``startup_s`` measures them apart in a fresh interpreter. ``pipeline_cpu_seconds`` is the
process's CPU time, since the 2 cores are shared with other work.

Baselines in the same run: the naive "same as yesterday" forecast (WAPE), the popularity list
(HR@10, NDCG@10) and the native LightGBM model (one-row latency).

Engines: on a copy of the same bronze, silver → gold → Feast export (no materialisation) runs
on Spark (``local[*]``, driver 1g; the session is started before the clock, ``spark_startup_s``
apart) and, as its baseline, on DuckDB; ``spark_parity`` is 1 when the two wrote identical
tables (batch/engines/parity.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa

from batch.catalogue_source import catalogue_table
from batch.engines import Engine
from batch.engines.duckdb_engine import DuckDBEngine
from batch.engines.parity import differences, lake_outputs
from batch.engines.spark_engine import SparkEngine
from batch.factors import publish_item_factors
from batch.features import export_features, run_features
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
SPARK_REPEATS = 1  # the engines' comparison; each Spark pass over 1M events takes minutes here
SMOKE_ENGINE_EVENTS = 3_000
# The smoke shop: few products, so a day's price and stock events leave room for shoppers;
# 30,000 events are then about five days, enough for a holdout day.
SMOKE_SHOP = ShopConfig(products=100, sessions_per_day=1_000)


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


def transform_seconds(lake: Path, engine: Engine, catalogue: pa.Table) -> float:
    """Wall time of silver → gold → Feast export on ``engine``, from bronze only."""
    for leftover in (lake / "silver", lake / "gold", lake / "feast"):
        shutil.rmtree(leftover, ignore_errors=True)
    start = time.perf_counter()
    run_silver(lake, engine=engine)
    run_gold(lake, catalogue, engine=engine)
    export_features(lake, engine)
    return time.perf_counter() - start


def engine_figures(
    settings: Settings, catalogue: pa.Table, repeats: int, mode: Mode, config: ShopConfig
) -> dict[str, float]:
    """Spark against DuckDB on copies of the same bronze: times and parity.

    Full size: the benchmark's 1M-event bronze. Smoke: a bronze of its own of SMOKE_ENGINE_EVENTS
    (every input topic in it), so the smoke pass stays a Spark start and a few seconds of queries.
    """
    root = settings.runtime_dir / "engines"
    lakes = {name: root / name for name in ("duckdb", "spark")}
    if mode.smoke:
        fill_bronze(lakes["duckdb"], SMOKE_ENGINE_EVENTS, config)
    else:
        shutil.copytree(settings.lake_dir / "bronze", lakes["duckdb"] / "bronze")
    shutil.copytree(lakes["duckdb"] / "bronze", lakes["spark"] / "bronze")
    start = time.perf_counter()
    spark = SparkEngine(settings)
    figures = {"spark_startup_s": time.perf_counter() - start}
    duck = DuckDBEngine()
    try:
        spark_runs = [transform_seconds(lakes["spark"], spark, catalogue) for _ in range(repeats)]
        duck_runs = [transform_seconds(lakes["duckdb"], duck, catalogue) for _ in range(repeats)]
    finally:
        spark.close()
        duck.close()
    found = differences(lake_outputs(lakes["duckdb"]), lake_outputs(lakes["spark"]))
    for line in found:
        print(f"parity: {line}")
    figures.update(
        spark_pipeline_seconds_1m_events=median(spark_runs),
        duckdb_transform_seconds_1m_events=median(duck_runs),
        spark_parity=float(not found),
    )
    return figures


def publish_models(registry: Path, models: Path) -> None:
    """Leave the trained models where the serving benchmark serves them from, as soon as they
    are trained: copied beside, then renamed into place, so ``models`` appears whole
    (``make bench-smoke`` starts the serving pass when it does)."""
    staging = models.with_name(f".{models.name}-{uuid.uuid4().hex[:6]}")
    shutil.copytree(registry, staging)
    shutil.rmtree(models, ignore_errors=True)
    staging.rename(models)


def main(mode: Mode) -> None:
    events_n, repeats = mode.size(EVENTS, 30_000), mode.size(REPEATS, 1)
    root = Path(tempfile.mkdtemp(prefix="tillflow-batch-bench-"))
    settings = Settings(
        lake_dir=root / "lake",
        registry_dir=root / "models",
        runtime_dir=root / "runtime",
        lineage_file=root / "lineage.jsonl",
        redis_prefix=f"bench-batch-{uuid.uuid4().hex[:6]}:",
        mlflow_model_prefix=mode.model_prefix,
        spark_driver_memory="1g",
    )
    # The Delta jars that `make setup` resolved, for the Spark session.
    (root / "runtime").mkdir(parents=True)
    (root / "runtime" / "cache").symlink_to((Settings().runtime_dir / "cache").resolve())
    require_redis(settings)
    config = SMOKE_SHOP if mode.smoke else ShopConfig()
    try:
        start = time.perf_counter()
        counts = fill_bronze(settings.lake_dir, events_n, config)
        print(f"bronze: {counts} in {time.perf_counter() - start:.0f}s (not timed)")
        catalogue = catalogue_table(Shop(config).catalogue())
        # A smoke pass skips the fresh interpreter: it times imports, not the pipeline's path.
        runs: dict[str, list[float]] = {} if mode.smoke else {"startup_s": [startup_seconds()]}
        for repeat in range(repeats):
            for key, value in one_run(settings, catalogue).items():
                runs.setdefault(key, []).append(value)
            print_repeat(repeat, repeats, runs)
        figures = {k: median(v) for k, v in runs.items()}
        figures["events"] = float(sum(counts.values()))
        # The item factors the training job fits beside the models (untimed: the figures
        # above time the models), so the serving benchmark's lists use the factor source.
        publish_item_factors(settings)
        publish_models(settings.registry_dir, mode.models)
        engines = engine_figures(settings, catalogue, mode.size(SPARK_REPEATS, 1), mode, config)
        print(", ".join(f"{k}={v:,.2f}" for k, v in engines.items()))
        figures.update(engines)
        path = write_result("batch", figures, {**runs, "repeats": repeats}, mode)
        print(f"wrote {path}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(parse_mode(__doc__))
