"""Running a batch job: one instance at a time, with lineage, logs and a record of the run.

:func:`run_job` takes the job's Redis lock (``JobBusy`` → a ``skipped`` run), emits OpenLineage
START/COMPLETE/FAIL events (ABORT when a stage waits for data it does not have yet:
:class:`batch.result.WaitingForData` → a ``skipped`` run with the reason), runs the job's stages
and appends a :class:`schemas.jobs.JobRun`
(status, duration, rows in/out, error) to Redis, where the admin page and
``tillflow batch runs`` read it. ``pipeline`` runs silver → gold → features → train, each stage
under its own lock too, so it never overlaps a separate run of one of them. Silver, gold and the
feature export run on the batch engine (``JobOptions.engine``, else ``TILLFLOW_BATCH_ENGINE``),
opened once per run and only by a stage that needs it (a Spark session starts in seconds); a
Spark run ends by registering the lake's tables in the catalogue (batch/metastore.py). A successful
``train`` or ``pipeline`` asks the scheduler for an ``audit`` of the models it produced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import structlog

from batch.catalogue_source import read_catalogue
from batch.engines import Engine, EngineName, open_engine
from batch.engines.spark_engine import SparkEngine
from batch.lineage import Lineage
from batch.locks import JobBusy, job_lock
from batch.result import StepResult, WaitingForData
from batch.runs import record_run, request_job
from infra.clients import SyncRedis, redis_client
from infra.readiness import require_redis
from schemas.jobs import JobRun, check_job
from schemas.settings import Settings

log = structlog.get_logger(__name__)

PIPELINE = ("silver", "gold", "features", "train")
STEPS = {
    "silver": 4,
    "gold": 3,
    "features": 1,
    "train": 2,
    "maintain": 0,
    "pipeline": 10,
    "audit": 1,
    "skew": 1,
}
AFTER_TRAINING = ("train", "pipeline")
"""Jobs after whose successful run an ``audit`` is requested from the scheduler."""
"""Progress steps per job (``maintain``: one per table, known when it starts)."""

Step = Callable[[str], None]


@dataclass(frozen=True)
class JobOptions:
    catalogue_file: Path | None = None  # instead of the catalogue in Redis
    retention_hours: int | None = None  # vacuum; default TILLFLOW_VACUUM_RETENTION_HOURS
    materialize: bool = True  # features: also copy them to Feast's online store
    engine: EngineName | None = None  # silver, gold, features; default TILLFLOW_BATCH_ENGINE


@dataclass
class _Catalogue:
    """Loaded at most once per run, and only by the stages that need it."""

    settings: Settings
    file: Path | None
    table: pa.Table | None = None

    def get(self) -> pa.Table:
        if self.table is None:
            self.table = read_catalogue(self.settings, self.file)
            if self.table.num_rows == 0:
                log.warning("catalogue.empty", hint="load it with `tillflow catalogue load`")
        return self.table


@dataclass
class _Engine:
    """The run's batch engine, opened by the first stage that needs it and closed at the end."""

    settings: Settings
    name: EngineName
    engine: Engine | None = None

    def get(self) -> Engine:
        if self.engine is None:
            self.engine = open_engine(self.settings, self.name)
        return self.engine

    def close(self) -> None:
        """Register the lake's tables in the catalogue (Spark), then stop the engine."""
        if self.engine is None:
            return
        try:
            if isinstance(self.engine, SparkEngine):
                from batch.metastore import register

                register(self.engine.spark, self.settings.lake_dir)
        except Exception:
            log.exception("catalogue.register_failed", lake=str(self.settings.lake_dir))
        finally:
            self.engine.close()
            self.engine = None


@dataclass(frozen=True)
class _Context:
    """What the stages of one run share: its options, catalogue and engine."""

    options: JobOptions
    catalogue: _Catalogue
    engine: _Engine


def _stage(settings: Settings, job: str, ctx: _Context, step: Step) -> StepResult:
    options, catalogue, engine = ctx.options, ctx.catalogue, ctx.engine
    if job == "silver":
        from batch.silver import run_silver

        return run_silver(settings.lake_dir, step, engine.get())
    if job == "gold":
        from batch.gold import run_gold

        return run_gold(settings.lake_dir, catalogue.get(), step, engine.get())
    if job == "features":
        from batch.features import run_features

        result = run_features(settings, materialize=options.materialize, engine=engine.get())
        step("features")
        return result
    if job == "train":
        from batch.training import run_training

        return run_training(settings, catalogue.get(), step)
    if job == "audit":
        from batch.audit import run_audit

        result = run_audit(settings, catalogue.get())
        step("audit")
        return result
    if job == "skew":
        from batch.skew import run_skew

        result = run_skew(settings)
        step("skew")
        return result
    if job == "maintain":
        from batch.maintenance import maintain

        hours = options.retention_hours
        result = maintain(
            settings.lake_dir, settings.vacuum_retention_hours if hours is None else hours, step
        )
        _prune_log_indices(settings)
        return result
    raise ValueError(f"unknown stage {job!r}")


def _prune_log_indices(settings: Settings) -> None:
    """Delete the shipped-log indices older than ``log_retention_days`` (when OpenSearch runs:
    the lake's housekeeping does not depend on it)."""
    from infra.readiness import opensearch_answers
    from search.client import opensearch_client
    from search.logs import prune_log_indices

    if not opensearch_answers(settings, 2.0):
        log.warning("maintain.logs_skipped", reason="OpenSearch is not answering")
        return
    with opensearch_client(settings, timeout_s=30.0) as client:
        deleted = prune_log_indices(client, settings, datetime.now(UTC).date())
    log.info("maintain.log_indices_deleted", indices=deleted)


def _locked_stage(
    client: SyncRedis, settings: Settings, job: str, ctx: _Context, step: Step
) -> StepResult:
    lineage = Lineage(settings, job)
    with job_lock(client, settings.keys, job, settings.job_lock_ttl_s):
        lineage.start()
        try:
            result = _stage(settings, job, ctx, step)
        except WaitingForData:
            lineage.abort()
            raise
        except Exception:
            lineage.fail()
            raise
        lineage.complete(result.inputs, result.outputs)
        return result


def run_job(
    settings: Settings,
    job: str,
    *,
    trigger: str = "manual",
    options: JobOptions | None = None,
    step: Step = lambda _: None,
    after_stage: Step = lambda _: None,
) -> tuple[JobRun, StepResult | None]:
    """Run ``job`` once and record the run; never raises for a failing job (status says it).

    ``after_stage`` is called with each stage's name as soon as the stage has written its
    output (a caller may start work that needs gold while ``pipeline`` goes on training)."""
    check_job(job)
    require_redis(settings)
    options = options or JobOptions()
    client = redis_client(settings, decode_responses=True)
    engine = _Engine(settings, options.engine or settings.batch_engine)
    ctx = _Context(options, _Catalogue(settings, options.catalogue_file), engine)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    result: StepResult | None = None
    error: str | None = None
    status = "ok"
    try:
        if job == "pipeline":
            lineage = Lineage(settings, job)
            with job_lock(client, settings.keys, job, settings.job_lock_ttl_s):
                lineage.start()
                result = StepResult()
                try:
                    for stage in PIPELINE:
                        result = result + _locked_stage(client, settings, stage, ctx, step)
                        after_stage(stage)
                except WaitingForData:
                    lineage.abort()
                    raise
                except Exception:
                    lineage.fail()
                    raise
                lineage.complete(result.inputs, result.outputs)
        else:
            result = _locked_stage(client, settings, job, ctx, step)
            after_stage(job)
    except (JobBusy, WaitingForData) as exc:
        status, error = "skipped", str(exc)
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("job.failed", job=job, trigger=trigger)
    finally:
        engine.close()
    run = JobRun(
        job=job,
        status=status,  # type: ignore[arg-type]
        started_at=started.isoformat(timespec="seconds"),
        duration_s=round(time.perf_counter() - clock, 3),
        rows_in=result.rows_in if result else 0,
        rows_out=result.rows_out if result else 0,
        error=error,
        trigger=trigger,
    )
    try:
        record_run(client, settings.keys, run)
        if run.status == "ok" and job in AFTER_TRAINING:
            request_job(client, settings.keys, "audit")
    finally:
        client.close()
    log.info(
        "job.finished",
        job=run.job,
        status=run.status,
        trigger=run.trigger,
        duration_s=run.duration_s,
        rows_in=run.rows_in,
        rows_out=run.rows_out,
        error=run.error,
        **({} if result is None else {"details": result.details}),
    )
    return run, result
