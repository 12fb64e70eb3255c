"""The latest fairness audit and skew run as Prometheus gauges, for the scheduler to expose.

Read from Redis (``keys.governance``, written by ``batch/audit.py`` and ``batch/skew.py``) at
every scrape, so ``tillflow batch audit`` in another process shows up at the next scrape:

- ``tillflow_fairness_ratio{check, dimension}``: lowest ÷ highest group value (1 = alike);
- ``tillflow_fairness_breach{check, dimension}``: 1 when the ratio is below its threshold;
- ``tillflow_feature_skew_mismatch_rate{feature}``: share of sampled products whose served
  value differs from the lake's;
- ``tillflow_feature_skew_breach{feature}``: 1 when that share is above its threshold.

Alert rules: ``TillflowFairnessBreach`` and ``TillflowFeatureSkew``
(infra/prometheus/rules/tillflow.yml).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis
import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from infra.clients import SyncRedis
from schemas.governance import AUDIT_FIELD, SKEW_FIELD, AuditSummary, SkewSummary
from schemas.keys import RedisKeys

log = structlog.get_logger(__name__)


def audit_families(summary: AuditSummary | None) -> list[GaugeMetricFamily]:
    ratio = GaugeMetricFamily(
        "tillflow_fairness_ratio",
        "Latest fairness audit: lowest ÷ highest group value per check and dimension.",
        labels=["check", "dimension"],
    )
    breach = GaugeMetricFamily(
        "tillflow_fairness_breach",
        "Latest fairness audit: 1 when a check's ratio is below its threshold.",
        labels=["check", "dimension"],
    )
    for d in summary.disparities if summary else []:
        if d.ratio is not None:
            ratio.add_metric([d.check, d.dimension], d.ratio)
        breach.add_metric([d.check, d.dimension], 1.0 if d.breached else 0.0)
    return [ratio, breach]


def skew_families(summary: SkewSummary | None) -> list[GaugeMetricFamily]:
    rate = GaugeMetricFamily(
        "tillflow_feature_skew_mismatch_rate",
        "Latest skew run: share of sampled products whose served feature differs from the lake.",
        labels=["feature"],
    )
    breach = GaugeMetricFamily(
        "tillflow_feature_skew_breach",
        "Latest skew run: 1 when a feature's mismatch rate is above its threshold.",
        labels=["feature"],
    )
    for f in summary.features if summary else []:
        rate.add_metric([f.feature], f.mismatch_rate)
        breach.add_metric([f.feature], 1.0 if f.breached else 0.0)
    return [rate, breach]


class GovernanceCollector(Collector):
    """Reads the latest summaries from Redis at each scrape (nothing while Redis is down)."""

    def __init__(self, client: SyncRedis, keys: RedisKeys) -> None:
        self.client = client
        self.keys = keys

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            raw: dict[Any, Any] = self.client.hgetall(self.keys.governance)  # type: ignore[assignment]
        except redis.RedisError as exc:
            log.warning("governance.metrics_unavailable", error=str(exc))
            raw = {}
        values = {_text(k): v for k, v in raw.items()}
        audit, skew = values.get(AUDIT_FIELD), values.get(SKEW_FIELD)
        yield from audit_families(audit and AuditSummary.model_validate_json(audit))
        yield from skew_families(skew and SkewSummary.model_validate_json(skew))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
