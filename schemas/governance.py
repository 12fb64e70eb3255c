"""Model governance as values: the audit and skew gold tables and their Redis summaries.

Written by ``batch/audit.py`` and ``batch/skew.py``; read by the scheduler's metrics
(``observability/governance.py``) and the admin API. The gold tables keep every run; the
Redis hash ``keys.governance`` holds the latest summary of each (field ``audit`` / ``skew``).

>>> s = SkewSummary(run_id="r1", checked_at="2026-01-05T00:00:00+00:00", entities=3, features=[
...     FeatureSkewView(feature="units_24h", compared=3, mismatches=1, mismatch_rate=1 / 3,
...                     max_abs_diff=2.0, threshold=0.05, breached=True)])
>>> SkewSummary.model_validate_json(s.model_dump_json()) == s
True
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import BaseModel

FAIRNESS_AUDIT = "fairness_audit"
FEATURE_SKEW = "feature_skew"
AUDIT_FIELD = "audit"
SKEW_FIELD = "skew"

FAIRNESS_AUDIT_SCHEMA = pa.schema(
    [
        pa.field("audit_id", pa.string(), nullable=False),
        pa.field("audited_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("date", pa.string(), nullable=False),  # YYYY-MM-DD of audited_at (partition)
        pa.field("check", pa.string(), nullable=False),  # demand_error | exposure | ...
        pa.field("dimension", pa.string(), nullable=False),  # store | category | brand | segment
        pa.field("group", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("ratio", pa.float64()),  # the dimension's lowest ÷ highest group value
        pa.field("threshold", pa.float64()),
        pa.field("breached", pa.bool_(), nullable=False),
        pa.field("models", pa.string(), nullable=False),  # model versions audited, JSON
    ]
)

FEATURE_SKEW_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("checked_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("date", pa.string(), nullable=False),
        pa.field("feature", pa.string(), nullable=False),
        pa.field("compared", pa.int64(), nullable=False),  # entities with both values
        pa.field("mismatches", pa.int64(), nullable=False),
        pa.field("mismatch_rate", pa.float64(), nullable=False),
        pa.field("max_abs_diff", pa.float64(), nullable=False),
        pa.field("threshold", pa.float64(), nullable=False),
        pa.field("breached", pa.bool_(), nullable=False),
    ]
)


class DisparityView(BaseModel):
    check: str
    dimension: str
    metric: str
    ratio: float | None  # None with fewer than two groups large enough to compare
    lowest: str
    highest: str
    groups: int
    threshold: float | None
    breached: bool


class AuditSummary(BaseModel):
    audit_id: str
    audited_at: str  # ISO-8601, UTC
    models: dict[str, str]
    disparities: list[DisparityView]


class FeatureSkewView(BaseModel):
    feature: str
    compared: int
    mismatches: int
    mismatch_rate: float
    max_abs_diff: float
    threshold: float
    breached: bool


class SkewSummary(BaseModel):
    run_id: str
    checked_at: str
    entities: int
    features: list[FeatureSkewView]
