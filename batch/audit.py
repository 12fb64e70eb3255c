"""The ``audit`` job: the fairness audit of the champion models and the published prices.

Gathers its inputs (:mod:`batch.audit_inputs`), computes the figures
(:mod:`governance.fairness`), judges each check against its threshold from the settings,
appends every group's figure to gold ``fairness_audit`` and puts the summary in Redis
(``keys.governance``), where the scheduler's metrics and the admin page read it.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime

import pyarrow as pa
import structlog

from batch.audit_inputs import AuditInputs, gather
from batch.lake import append
from batch.result import StepResult
from governance import fairness
from governance.fairness import Figures
from infra.clients import redis_client
from infra.errors import ServiceUnavailable
from registry.tracking import log_audit_run
from schemas.governance import (
    AUDIT_FIELD,
    FAIRNESS_AUDIT,
    FAIRNESS_AUDIT_SCHEMA,
    AuditSummary,
    DisparityView,
)
from schemas.lake import gold_path
from schemas.settings import Settings

log = structlog.get_logger(__name__)


def thresholds(settings: Settings) -> dict[str, float]:
    return {
        "demand_error": settings.audit_min_ratio_demand_error,
        "exposure": settings.audit_min_ratio_exposure,
        "hit_rate": settings.audit_min_ratio_hit_rate,
        "price_change": settings.audit_min_ratio_price_change,
    }


def audit(inputs: AuditInputs, settings: Settings) -> Figures:
    """Every check's figures, judged against the settings' thresholds."""
    n = settings.audit_min_group_rows
    figures = (
        fairness.demand_error(inputs.demand_rows, ["category"], n)
        + fairness.demand_error(inputs.demand_by_store, ["store"], n)
        + fairness.exposure(inputs.slots, inputs.catalogue, ["category", "brand"], n)
        + fairness.hit_rate(inputs.shoppers, ["segment", "store"], n)
        + fairness.price_change(inputs.changes, ["category"], n)
        + fairness.price_index(inputs.lines, ["store"], n)
    )
    return fairness.judged(figures, thresholds(settings))


def _nan_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def audit_table(figures: Figures, audit_id: str, at: datetime, models: dict[str, str]) -> pa.Table:
    """One row per (check, dimension, group), with the dimension's ratio and verdict."""
    verdicts = {(d.check, d.dimension, d.metric): d for d in figures.summary}
    rows = []
    for f in figures.groups:
        d = verdicts[(f.check, f.dimension, f.metric)]
        rows.append(
            {
                "audit_id": audit_id,
                "audited_at": at,
                "date": at.date().isoformat(),
                "check": f.check,
                "dimension": f.dimension,
                "group": f.group,
                "metric": f.metric,
                "value": _nan_none(f.value),
                "rows": f.rows,
                "ratio": _nan_none(d.ratio),
                "threshold": _nan_none(d.threshold),
                "breached": d.breached,
                "models": json.dumps(models, sort_keys=True),
            }
        )
    return pa.Table.from_pylist(rows, FAIRNESS_AUDIT_SCHEMA)


def summary(figures: Figures, audit_id: str, at: datetime, models: dict[str, str]) -> AuditSummary:
    return AuditSummary(
        audit_id=audit_id,
        audited_at=at.isoformat(timespec="seconds"),
        models=models,
        disparities=[
            DisparityView(
                check=d.check,
                dimension=d.dimension,
                metric=d.metric,
                ratio=_nan_none(d.ratio),
                lowest=d.lowest,
                highest=d.highest,
                groups=d.groups,
                threshold=_nan_none(d.threshold),
                breached=d.breached,
            )
            for d in figures.summary
        ],
    )


def audit_metrics(result: AuditSummary) -> dict[str, float]:
    """The audit as flat metrics, the form an experiment tracker logs beside the model run:
    ``fairness.<check>.<dimension>.ratio`` and ``.breached`` (1/0).

    >>> view = DisparityView(check="hit_rate", dimension="store", metric="hit_rate_at_10",
    ...     ratio=0.8, lowest="s2", highest="s1", groups=2, threshold=0.3, breached=False)
    >>> audit_metrics(AuditSummary(audit_id="a", audited_at="t", models={}, disparities=[view]))
    {'fairness.hit_rate.store.ratio': 0.8, 'fairness.hit_rate.store.breached': 0.0}
    """
    out: dict[str, float] = {}
    for d in result.disparities:
        if d.ratio is not None:
            out[f"fairness.{d.check}.{d.dimension}.ratio"] = d.ratio
        out[f"fairness.{d.check}.{d.dimension}.breached"] = float(d.breached)
    return out


def _log_to_mlflow(settings: Settings, result: AuditSummary, table: pa.Table) -> str | None:
    """The audit as an MLflow run (its run id); None, with a warning, while MLflow is away:
    the gold table, Redis and the gauges already hold the audit."""
    rows = json.dumps(table.to_pylist(), default=str, sort_keys=True)
    try:
        return log_audit_run(settings, result.audit_id, result.models, audit_metrics(result), rows)
    except ServiceUnavailable as exc:
        log.warning("audit.not_tracked", audit_id=result.audit_id, error=str(exc))
        return None


def run_audit(settings: Settings, catalogue: pa.Table, now: datetime | None = None) -> StepResult:
    at = now or datetime.now(UTC)
    inputs = gather(settings, catalogue)
    figures = audit(inputs, settings)
    audit_id = uuid.uuid4().hex
    table = audit_table(figures, audit_id, at, inputs.models)
    append(gold_path(settings.lake_dir, FAIRNESS_AUDIT), table, marks={}, partition_by=["date"])
    result = summary(figures, audit_id, at, inputs.models)
    client = redis_client(settings)
    try:
        client.hset(settings.keys.governance, AUDIT_FIELD, result.model_dump_json())
    finally:
        client.close()
    breaches = [f"{d.check}/{d.dimension}" for d in result.disparities if d.breached]
    mlflow_run = _log_to_mlflow(settings, result, table)
    log.info(
        "audit.finished",
        audit_id=audit_id,
        groups=table.num_rows,
        breaches=breaches,
        mlflow_run=mlflow_run,
    )
    rows_in = len(inputs.demand_rows) + len(inputs.slots) + len(inputs.changes) + len(inputs.lines)
    return StepResult(
        rows_in=rows_in,
        rows_out=table.num_rows,
        inputs=(
            "feast/sku_daily_features",
            "gold/orders_enriched",
            "silver/user_activity",
            "silver/order_lines",
            "redis/price-history",
        ),
        outputs=(f"gold/{FAIRNESS_AUDIT}",),
        details={
            "audit_id": audit_id,
            "models": inputs.models,
            "breaches": breaches,
            "mlflow_run": mlflow_run,
        },
    )
