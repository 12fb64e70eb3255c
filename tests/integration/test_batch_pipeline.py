"""The batch jobs on Delta tables written by the real flow from a simulator run through Kafka.

The simulator produces four days of a small shop to the real Kafka (plus re-sent duplicates);
the dataflow runs to the end of the topics into a fresh lake; then the jobs run as
``tillflow batch`` runs them (locks, lineage, run records in the real Redis, Feast over it).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import numpy as np
import orjson
import pyarrow.compute as pc
import pytest
import redis
from bytewax.testing import run_main
from confluent_kafka import Producer
from deltalake import DeltaTable, write_deltalake
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from prometheus_client import CollectorRegistry

from api.admin import Governance
from api.main import create_app
from batch.audit import audit_metrics
from batch.jobs import JobOptions, run_job
from batch.lake import read_all
from batch.locks import job_lock
from batch.onnx_export import onnx_scores, session
from batch.runs import latest_runs, request_job
from batch.scheduler import Scheduler
from featurestore.repo import BATCH_SKU_VIEW, feature_store
from flows.catalogue import load_catalogue
from flows.dataflow import build_flow
from flows.records import LakeRow
from flows.sinks.lake import to_arrow
from governance.importance_plot import IMPORTANCE_FILE
from infra.errors import ServiceUnavailable
from infra.readiness import require_topics
from infra.stack.topics import delete_topics, ensure_topics
from observability.governance import GovernanceCollector
from online_models.factors import factors_path
from registry import CHALLENGER, CHAMPION, ModelRegistry
from schemas.features import BATCH_SKU_FEATURES
from schemas.governance import AUDIT_FIELD, FAIRNESS_AUDIT, AuditSummary
from schemas.lake import (
    GOLD_SCHEMAS,
    ORDER_LINES,
    ORDERS_ENRICHED,
    QUARANTINE,
    SILVER_SCHEMAS,
    SILVER_TABLES,
    SKU_DAILY,
    USER_ACTIVITY,
    USER_ITEM_INTERACTIONS,
    bronze_path,
    gold_path,
    silver_path,
)
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, INPUT_TOPICS, ORDERS
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop
from tests.credentials import admin_headers
from tests.flow_processes import free_port
from tests.notebooks import execute
from tests.registered import model_prefix

pytestmark = pytest.mark.integration

CONFIG = ShopConfig(seed=11, products=40, shoppers=300, sessions_per_day=2_500, competitors=2)
DAYS = 4.0


@pytest.fixture(scope="module")
def lake(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    rid = uuid.uuid4().hex[:6]
    root = tmp_path_factory.mktemp("batch")
    settings = stack.model_copy(
        update={
            "topic_prefix": f"{stack.topic_prefix}batch{rid}.",
            "redis_prefix": f"{stack.redis_prefix}batch{rid}:",
            "lake_dir": root / "lake",
            "registry_dir": root / "models",
            "mlflow_model_prefix": model_prefix(),
            "runtime_dir": root / "runtime",
            "lineage_file": root / "lineage.jsonl",
            "scheduler_poll_s": 0.1,
        }
    )
    ensure_topics(settings)
    wait_for_topics(settings)
    asyncio.run(run_shop(settings, CONFIG, RunOptions(days=DAYS, ground_truth=None)))
    # Re-send the first 30 order messages: bronze holds them twice, silver must not.
    resent = first_order_messages(settings)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for key, value in resent:
        producer.produce(settings.topic(ORDERS), value=value, key=key)
    producer.flush(30)
    run_main(build_flow(settings, load_catalogue(settings), tail=False))
    yield settings
    delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])


def wait_for_topics(settings: Settings, timeout_s: float = 30.0) -> None:
    """Topic creation is asynchronous: wait (bounded) until the broker lists the topics."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            require_topics(settings, [settings.topic(t) for t in INPUT_TOPICS], timeout_s=5)
            return
        except ServiceUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def first_order_messages(settings: Settings) -> list[tuple[bytes | None, bytes]]:
    from confluent_kafka import Consumer

    config = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": uuid.uuid4().hex,
        "auto.offset.reset": "earliest",
    }
    consumer = Consumer(config)
    consumer.subscribe([settings.topic(ORDERS)])
    out: list[tuple[bytes | None, bytes]] = []
    while len(out) < 30:
        msg = consumer.poll(5)
        assert msg is not None, "the simulator produced fewer than 30 orders"
        if not msg.error():
            out.append((msg.key(), msg.value()))
    consumer.close()
    return out


def table(settings: Settings, path: Path) -> DeltaTable:
    del settings
    return DeltaTable(str(path))


def ok(settings: Settings, job: str, **options: object) -> dict[str, object]:
    run, result = run_job(settings, job, options=JobOptions(**options))  # type: ignore[arg-type]
    assert run.status == "ok", run.error
    assert result is not None
    return {"run": run, **result.details}


@pytest.fixture(scope="module")
def pipeline(lake: Settings) -> Settings:
    """silver → gold → features → train, once, as the scheduler's pipeline job runs them."""
    ok(lake, "pipeline")
    return lake


def test_silver_holds_each_bronze_event_once_typed(pipeline: Settings) -> None:
    lake = pipeline.lake_dir
    for topic in INPUT_TOPICS:
        bronze = read_all(bronze_path(lake, topic))
        assert bronze is not None
        silver = table(pipeline, silver_path(lake, SILVER_TABLES[topic.name]))
        rows = silver.to_pyarrow_table()
        assert rows.schema == SILVER_SCHEMAS[SILVER_TABLES[topic.name]]
        unique = set(bronze.column("event_id").to_pylist())
        assert set(rows.column("event_id").to_pylist()) == unique, topic.name
        if topic is ORDERS:
            assert bronze.num_rows == len(unique) + 30  # the re-sent orders
            payloads = dict(
                zip(
                    bronze.column("event_id").to_pylist(),
                    bronze.column("payload").to_pylist(),
                    strict=True,
                )
            )
            lines = sum(len(orjson.loads(p)["lines"]) for p in payloads.values())
            assert rows.num_rows == lines  # one row per line of each order, duplicates dropped
        else:
            assert rows.num_rows == len(unique)
        protocol = silver.protocol()
        assert protocol.min_reader_version == 1, "other engines must read silver"
        assert "deletionVectors" not in (protocol.reader_features or [])


def test_gold_tables_have_the_contract_schemas_and_add_up(pipeline: Settings) -> None:
    lake = pipeline.lake_dir
    gold = {
        name: table(pipeline, gold_path(lake, name)).to_pyarrow_table() for name in GOLD_SCHEMAS
    }
    for name, rows in gold.items():
        assert rows.schema == GOLD_SCHEMAS[name], name
        assert rows.num_rows > 0, name
    lines = table(pipeline, silver_path(lake, ORDER_LINES)).to_pyarrow_table()
    activity = table(pipeline, silver_path(lake, USER_ACTIVITY)).to_pyarrow_table()
    units = pc.sum(lines.column("quantity")).as_py()
    assert pc.sum(gold[SKU_DAILY].column("units")).as_py() == units
    assert pc.sum(gold[USER_ITEM_INTERACTIONS].column("purchases")).as_py() == units
    assert gold[ORDERS_ENRICHED].num_rows == lines.num_rows
    assert gold[ORDERS_ENRICHED].column("category").null_count == 0
    views = pc.sum(pc.equal(activity.column("action"), "view")).as_py()
    assert pc.sum(gold[SKU_DAILY].column("views")).as_py() == views
    interactions = gold[USER_ITEM_INTERACTIONS].to_pylist()
    for row in interactions[:50]:
        assert row["weight"] == row["views"] + 3 * row["carts"] + 10 * row["purchases"]
    daily = gold[SKU_DAILY].to_pylist()
    sold = [r for r in daily if r["units"] > 0]
    assert all(r["min_price"] <= r["avg_price"] + 1e-9 <= r["max_price"] + 2e-9 for r in sold)
    assert all(r["stock"] is not None for r in daily)
    assert len({(r["sku"], r["date"]) for r in daily}) == len(daily)


def test_both_models_are_exported_registered_and_current(pipeline: Settings) -> None:
    registry = ModelRegistry.from_settings(pipeline)
    for name, metric in (("demand", "wape"), ("ranker", "ndcg_at_10")):
        current = registry.current(name)
        assert current is not None, name
        meta = current.metadata
        assert {"features", "metrics", "trained_on", "onnx_input", "created_at"} <= set(meta)
        assert meta["metrics"]["onnx_max_abs_diff"] <= 1e-3
        assert np.isfinite(meta["metrics"][metric])
        assert all(isinstance(v, int) and v >= 0 for v in meta["trained_on"].values())
        sess = session(current.model_path.read_bytes())
        assert sess.get_inputs()[0].name == meta["onnx_input"]
        rows = np.zeros((3, len(meta["features"])), dtype=np.float32)
        assert onnx_scores(sess, meta["onnx_output"], rows).shape == (3,)
        # the native booster the explanations come from predicts what the ONNX file does
        native = lgb.Booster(model_file=str(current.native_path)).predict(rows)
        expected = native if name == "demand" else native.ravel()
        assert np.allclose(onnx_scores(sess, meta["onnx_output"], rows), expected, atol=1e-4)
    importance = registry.current("demand").metadata["importance"]  # type: ignore[union-attr]
    assert set(importance) == set(registry.current("demand").metadata["features"])  # type: ignore[union-attr]
    assert (registry.current("demand").path / IMPORTANCE_FILE).exists()  # type: ignore[union-attr]
    demand = registry.current("demand").metadata["metrics"]  # type: ignore[union-attr]
    assert demand["wape_naive"] > 0
    ranker = registry.current("ranker").metadata["metrics"]  # type: ignore[union-attr]
    assert ranker["hr_at_10"] >= 0
    assert ranker["hr_at_10_popularity"] >= 0


def test_each_training_run_is_in_mlflow_with_its_data_versions_and_figures(
    pipeline: Settings,
) -> None:
    from mlflow import MlflowClient

    from batch.training import FEATURE_SET

    registry = ModelRegistry.from_settings(pipeline)
    client = MlflowClient(tracking_uri=pipeline.mlflow_url)
    figures = {
        "demand": ("wape", "wape_naive", "onnx_max_abs_diff"),
        "ranker": (
            "hr_at_10",
            "ndcg_at_10",
            "hr_at_10_popularity",
            "ndcg_at_10_popularity",
            "onnx_max_abs_diff",
        ),
    }
    for name, keys in figures.items():
        current = registry.current(name)
        assert current is not None
        run = client.get_run(current.metadata["run_id"])
        assert run.data.tags["tillflow.model"] == name
        for table, version in current.metadata["trained_on"].items():
            assert run.data.params[f"data.{table}"] == str(version)
        for key in keys:
            assert run.data.metrics[key] == pytest.approx(current.metadata["metrics"][key])
        assert run.data.params["features"] == ",".join(current.metadata["features"])
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
        assert {"model/MLmodel", "model/model.onnx"} <= artifacts
    demand_run = client.get_run(registry.current("demand").metadata["run_id"])  # type: ignore[union-attr]
    assert demand_run.data.params["feast.feature_set"] == ",".join(FEATURE_SET)


def test_retraining_on_the_same_data_does_not_replace_the_current_model(
    pipeline: Settings,
) -> None:
    registry = ModelRegistry.from_settings(pipeline)
    before = {n: registry.current(n).version for n in ("demand", "ranker")}  # type: ignore[union-attr]
    details = ok(pipeline, "train")
    assert details["demand_promoted"] is False  # the same data gives the same model: not better
    assert details["ranker_promoted"] is False
    # no served-list log in this lake: the order gate is recorded, not applied
    assert str(details["ranker_order_gate"]).startswith("not applied, the holdout not being")
    assert {n: registry.current(n).version for n in before} == before  # type: ignore[union-attr]
    assert len(registry.versions("demand")) == 2
    assert registry.alias("demand", CHALLENGER) == 2  # kept for a look, not served


def test_reruns_change_nothing_and_new_bronze_is_processed_incrementally(
    pipeline: Settings,
) -> None:
    lake = pipeline.lake_dir
    versions = {
        p: table(pipeline, p).version()
        for p in [
            silver_path(lake, ORDER_LINES),
            gold_path(lake, SKU_DAILY),
            gold_path(lake, ORDERS_ENRICHED),
        ]
    }
    ok(pipeline, "silver")
    ok(pipeline, "gold")
    assert {p: table(pipeline, p).version() for p in versions} == versions
    # New bronze: a duplicate of an old order, a new order, and one that breaks the contract.
    old = read_all(bronze_path(lake, ORDERS)).slice(0, 1).to_pylist()[0]  # type: ignore[union-attr]
    stamp = datetime(2026, 1, 7, 12, tzinfo=UTC)
    new_order = {
        "event_id": "batch-new-1",
        "event_time": stamp.isoformat(),
        "order_id": "o-new",
        "user_id": "u-new",
        "store_id": "store-01",
        "lines": [{"sku": "SKU-00001", "quantity": 2, "unit_price": 3.5}],
    }
    bad = {
        **new_order,
        "event_id": "batch-bad-1",
        "lines": [{"sku": "SKU-00001", "quantity": 0, "unit_price": 1}],
    }
    us = int(stamp.timestamp() * 1e6)
    rows = [
        LakeRow(
            "orders",
            9,
            1,
            b"k",
            old["payload"].encode(),
            old["event_id"],
            int(old["event_time"].timestamp() * 1e6),
        ),
        LakeRow("orders", 9, 2, b"k", orjson.dumps(new_order), "batch-new-1", us),
        LakeRow("orders", 9, 3, b"k", orjson.dumps(bad), "batch-bad-1", us),
    ]
    write_deltalake(
        str(bronze_path(lake, ORDERS)),
        to_arrow(rows, datetime.now(UTC)),
        mode="append",
        partition_by=["date"],
    )
    before = table(pipeline, silver_path(lake, ORDER_LINES)).to_pyarrow_table().num_rows
    details = ok(pipeline, "silver")
    after = table(pipeline, silver_path(lake, ORDER_LINES)).to_pyarrow_table()
    assert after.num_rows == before + 1
    assert details["run"].rows_in == 3  # type: ignore[attr-defined]
    quarantine = table(pipeline, silver_path(lake, QUARANTINE)).to_pyarrow_table().to_pylist()
    assert [(q["event_id"], q["reason"]) for q in quarantine] == [
        ("batch-bad-1", "line 0: quantity must be between 1 and 10000")
    ]
    details = ok(pipeline, "gold")
    assert details["sku_daily_dates"] == 1  # only the touched day is recomputed
    enriched = table(pipeline, gold_path(lake, ORDERS_ENRICHED)).to_pyarrow_table()
    assert "o-new" in enriched.column("order_id").to_pylist()
    assert enriched.num_rows == after.num_rows


def test_batch_features_are_materialised_to_feasts_online_store(pipeline: Settings) -> None:
    store = feature_store(pipeline)
    names = [f"{BATCH_SKU_VIEW}:{f.name}" for f in BATCH_SKU_FEATURES]
    online = store.get_online_features(features=names, entity_rows=[{"sku": "SKU-00001"}])
    got = online.to_dict()
    assert got["units_per_day_7d"][0] is not None
    import pyarrow.parquet as pq

    from schemas.lake import feast_source_path

    exported = pq.read_table(feast_source_path(pipeline.lake_dir, BATCH_SKU_VIEW)).to_pylist()
    last = max((r for r in exported if r["sku"] == "SKU-00001"), key=lambda r: r["event_timestamp"])
    assert got["units_1d"][0] == last["units_1d"]
    assert got["units_per_day_7d"][0] == pytest.approx(last["units_per_day_7d"])


def test_every_job_left_lineage_and_a_run_record(
    pipeline: Settings, redis_client: redis.Redis
) -> None:
    events = [json.loads(line) for line in pipeline.lineage_file.read_text().splitlines()]
    silver = [e for e in events if e["job"]["name"] == "batch.silver"]
    assert {e["eventType"] for e in silver} >= {"START", "COMPLETE"}
    complete = next(e for e in silver if e["eventType"] == "COMPLETE")
    assert "bronze/orders" in {d["name"] for d in complete["inputs"]}
    assert "silver/order_lines" in {d["name"] for d in complete["outputs"]}
    train = next(
        e for e in events if e["job"]["name"] == "batch.train" and e["eventType"] == "COMPLETE"
    )
    assert {d["namespace"] for d in train["outputs"]} == {
        f"file://{pipeline.registry_dir.resolve()}"
    }
    names = {d["name"] for d in train["outputs"]}
    factors = factors_path(pipeline.registry_dir, pipeline.mlflow_model_prefix)
    assert f"models/{factors.name}" in names  # the discover list's item factors
    assert factors.exists()
    assert {n.rsplit("/", 1)[0] for n in names - {f"models/{factors.name}"}} == {
        "models/demand",
        "models/ranker",
    }
    ok(pipeline, "gold")
    runs = latest_runs(redis_client, pipeline.keys, 50)
    assert runs[0].job == "gold"
    assert {"pipeline", "gold"} <= {r.job for r in runs}
    assert all(r.status == "ok" and r.duration_s >= 0 for r in runs)
    pipeline_run = next(r for r in runs if r.job == "pipeline")
    assert pipeline_run.rows_in > 0
    assert pipeline_run.rows_out > 0


def test_a_held_lock_skips_the_job(pipeline: Settings, redis_client: redis.Redis) -> None:
    with job_lock(redis_client, pipeline.keys, "silver", 60):
        run, _ = run_job(pipeline, "silver")
    assert run.status == "skipped"
    assert "already running" in (run.error or "")
    run, _ = run_job(pipeline, "silver")
    assert run.status == "ok"


def test_scheduler_runs_due_jobs_retrains_on_drift_and_serves_requests(
    pipeline: Settings, redis_client: redis.Redis
) -> None:
    clock = [1_000.0]
    scheduler = Scheduler(pipeline, {"silver": 60.0}, clock=lambda: clock[0])
    try:
        # the trainings before asked for an audit of their models: one run serves them all
        first = [(r.job, r.trigger) for r in scheduler.tick()]
        assert [j for j in first if j[0] != "audit"] == [("silver", "schedule")]
        assert first.count(("audit", "request")) == 1
        assert scheduler.tick() == []  # not due again yet
        clock[0] += 61
        assert [r.job for r in scheduler.tick()] == ["silver"]
        redis_client.xadd(pipeline.keys.drift_events, {"sku": "SKU-00001", "detector": "adwin"})
        request_job(redis_client, pipeline.keys, "gold")
        runs = scheduler.tick()
        assert [(r.job, r.trigger, r.status) for r in runs] == [
            ("train", "drift", "ok"),
            ("gold", "request", "ok"),
        ]
        # the training asked for an audit: the next tick runs it, once
        assert [(r.job, r.trigger, r.status) for r in scheduler.tick()] == [
            ("audit", "request", "ok")
        ]
        assert scheduler.tick() == []  # each drift entry and request is handled once
    finally:
        scheduler.close()
    restarted = Scheduler(pipeline, {}, clock=lambda: clock[0])
    try:
        assert restarted.tick() == []  # the cursors survived in Redis
    finally:
        restarted.close()


def test_the_audit_of_the_champions_lands_in_gold_redis_and_the_gauges(
    pipeline: Settings, redis_client: redis.Redis
) -> None:
    details = ok(pipeline, "audit")
    registry = ModelRegistry.from_settings(pipeline)
    assert details["models"] == {n: registry.current(n).label for n in ("demand", "ranker")}  # type: ignore[union-attr]
    rows = DeltaTable(str(gold_path(pipeline.lake_dir, FAIRNESS_AUDIT))).to_pandas()
    mine = rows[rows["audit_id"] == details["audit_id"]]
    checks = set(zip(mine["check"], mine["dimension"], strict=True))
    assert checks >= {
        ("demand_error", "category"),
        ("demand_error", "store"),
        ("exposure", "category"),
        ("hit_rate", "segment"),
        ("price_change", "store"),
    }
    # the demand error by category covers every holdout row once
    by_category = mine[(mine["check"] == "demand_error") & (mine["dimension"] == "category")]
    assert by_category["rows"].sum() > 0
    assert set(by_category["group"]) <= set(
        load_catalogue(pipeline)[s].category for s in load_catalogue(pipeline)
    )
    summary = AuditSummary.model_validate_json(
        redis_client.hget(pipeline.keys.governance, AUDIT_FIELD) or ""
    )
    assert summary.audit_id == details["audit_id"]
    # ... and in MLflow, beside the training runs: the audited versions and every ratio
    tracked = MlflowClient(tracking_uri=pipeline.mlflow_url).get_run(details["mlflow_run"])
    assert tracked.data.tags["tillflow.audit_id"] == details["audit_id"]
    assert tracked.data.tags["model.demand"] == details["models"]["demand"]
    assert tracked.data.metrics == pytest.approx(audit_metrics(summary))
    gauges = CollectorRegistry()
    gauges.register(GovernanceCollector(redis_client, pipeline.keys))
    for d in summary.disparities:
        labels = {"check": d.check, "dimension": d.dimension}
        assert gauges.get_sample_value("tillflow_fairness_breach", labels) == float(d.breached)
    # ... and on the admin page's endpoint
    with TestClient(create_app(pipeline), headers=admin_headers(pipeline)) as api:
        served = Governance.model_validate(api.get("/admin/governance").json())
    assert served.audit == summary


def test_the_notebook_retrains_and_compares_with_the_champion(pipeline: Settings) -> None:
    executed = execute("demand_model.ipynb", pipeline)
    outputs = {i: c.outputs for i, c in enumerate(executed.cells) if c.cell_type == "code"}
    assert all(not any(o.output_type == "error" for o in out) for out in outputs.values())
    comparison = next(
        o
        for out in outputs.values()
        for o in out
        if "retrained here" in str(o.get("data", {}).get("text/plain", ""))
        and "naive (day before)" in str(o.get("data", {}))
    )
    champion = ModelRegistry.from_settings(pipeline).current("demand")
    assert champion is not None
    assert champion.label in comparison["data"]["text/plain"]
    images = [o for out in outputs.values() for o in out if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # both models per day, and their importances


def test_maintenance_compacts_and_vacuums_without_changing_data(pipeline: Settings) -> None:
    path = bronze_path(pipeline.lake_dir, ORDERS)
    before = table(pipeline, path)
    rows, files = before.to_pyarrow_table().num_rows, len(before.file_uris())
    details = ok(pipeline, "maintain", retention_hours=0)
    after = table(pipeline, path)
    assert after.to_pyarrow_table().num_rows == rows
    assert len(after.file_uris()) <= files
    assert details["files_vacuumed"] > 0  # type: ignore[operator]
    assert "OPTIMIZE" in {h["operation"] for h in after.history(5)}
    ok(pipeline, "silver")  # compacted bronze is re-read once; dedupe keeps silver exact
    silver = table(pipeline, silver_path(pipeline.lake_dir, ORDER_LINES)).to_pyarrow_table()
    keys = set(
        zip(silver.column("event_id").to_pylist(), silver.column("line").to_pylist(), strict=True)
    )
    assert len(keys) == silver.num_rows


def test_models_cli_lists_promotes_and_rolls_back(pipeline: Settings) -> None:
    base = {
        "PATH": "/usr/bin:/bin",
        "TILLFLOW_REGISTRY_DIR": str(pipeline.registry_dir),
        "TILLFLOW_REDIS_PREFIX": pipeline.redis_prefix,
        "TILLFLOW_MLFLOW_MODEL_PREFIX": pipeline.mlflow_model_prefix,
    }

    def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args],
            capture_output=True,
            text=True,
            env={**base, **(env or {})},
            timeout=120,
            check=False,
        )

    listed = cli("models", "list")
    assert listed.returncode == 0, listed.stderr
    assert "demand" in listed.stdout
    assert "ranker" in listed.stdout
    assert cli("models", "promote", "demand", "2").stdout.strip() == "current demand: demand:v2"
    registry = ModelRegistry.from_settings(pipeline)
    assert registry.alias("demand", CHAMPION) == 2
    assert cli("models", "rollback", "demand").stdout.strip() == "current demand: demand:v1"
    assert registry.alias("demand", CHAMPION) == 1
    away = cli("models", "list", env={"TILLFLOW_MLFLOW_URL": f"http://127.0.0.1:{free_port()}"})
    assert away.returncode == 1
    assert "MLflow is not reachable" in away.stderr
    missing = cli("models", "promote", "demand", "99")
    assert missing.returncode == 1
    assert "has no version 99" in missing.stderr
    runs = cli("batch", "runs", "-n", "5")
    assert runs.returncode == 0, runs.stderr
    assert "silver" in runs.stdout
