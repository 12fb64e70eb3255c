"""What each hook of the flows does to the Prometheus metrics (a fresh registry per test)."""

from __future__ import annotations

import time

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from flows.metrics import FlowMetrics
from flows.parse import parse_message
from flows.records import Accepted, FeatureRow
from flows.steps import Routed
from observability.jobs import JobMetrics
from online_models.pricer import PriceChange
from schemas.event_time import EventTimePolicy
from schemas.jobs import JobRun
from schemas.topics import INPUT_TOPICS, ORDERS, USER_ACTIVITY

TOPICS = {t.name: t for t in INPUT_TOPICS}
POLICY = EventTimePolicy()


@pytest.fixture
def metrics() -> FlowMetrics:
    return FlowMetrics(CollectorRegistry())


def value(m: FlowMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def order(event_id: str, t: str, lines: list[tuple[str, int, float]]) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "event_time": t,
            "order_id": "o-1",
            "user_id": "u-1",
            "store_id": "s-1",
            "lines": [{"sku": s, "quantity": q, "unit_price": p} for s, q, p in lines],
        }
    )


def test_series_exist_at_zero_before_any_event(metrics: FlowMetrics) -> None:
    for topic in INPUT_TOPICS:
        assert value(metrics, "tillflow_flow_events_total", topic=topic.name) == 0.0
        assert value(metrics, "tillflow_flow_dead_lettered_total", topic=topic.name) == 0.0
    assert value(metrics, "tillflow_flow_drift_detections_total", model="elasticity") == 0.0
    text = generate_latest(metrics.registry).decode()
    assert "tillflow_flow_processing_lag_seconds_bucket" in text


def test_parsed_messages_count_lag_freshness_offsets(metrics: FlowMetrics) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 30))
    good = parse_message(
        TOPICS, "orders", 2, 41, b"o-1", order("e1", stamp, [("A", 1, 2.0)]), policy=POLICY
    )
    bad = parse_message(
        TOPICS, "orders", 2, 42, b"o-1", b"{", [("x-correlation-id", b"r")], policy=POLICY
    )
    assert isinstance(good, Accepted)
    metrics.on_parsed("s", good)
    metrics.on_parsed("s", bad)
    assert value(metrics, "tillflow_flow_events_total", topic="orders") == 2.0
    assert value(metrics, "tillflow_flow_dead_lettered_total", topic="orders") == 1.0
    assert value(metrics, "tillflow_flow_dead_lettered_total", topic="inventory") == 0.0
    assert value(metrics, "tillflow_flow_processing_lag_seconds_count", topic="orders") == 1.0
    lag = value(metrics, "tillflow_flow_processing_lag_seconds_sum", topic="orders")
    assert lag is not None
    assert 29.0 <= lag < 3600  # the event is 30 s old (to the second)
    assert value(metrics, "tillflow_flow_last_event_timestamp_seconds", topic="orders") == (good.t)
    assert metrics.offsets == {("orders", 2): 42}


def test_unique_orders_add_revenue_and_units(metrics: FlowMetrics) -> None:
    raw = order("e1", "2026-01-05T10:00:00Z", [("A", 2, 2.5), ("B", 1, 10.0)])
    rec = parse_message(TOPICS, "orders", 0, 0, None, raw, policy=POLICY)
    assert isinstance(rec, Accepted)
    metrics.on_unique("s", Routed.of(rec))
    view = parse_message(
        TOPICS,
        USER_ACTIVITY.name,
        0,
        0,
        None,
        orjson.dumps(
            {
                "event_id": "v",
                "event_time": "2026-01-05T10:00:00Z",
                "user_id": "u",
                "session_id": "s",
                "action": "view",
                "sku": "A",
            }
        ),
        policy=POLICY,
    )
    assert isinstance(view, Accepted)
    metrics.on_unique("s", Routed.of(view))
    assert value(metrics, "tillflow_flow_revenue_total") == 15.0
    assert value(metrics, "tillflow_flow_units_sold_total") == 3.0
    assert ORDERS.name == rec.topic


def test_features_count_new_late_signals_and_average_learner_error(metrics: FlowMetrics) -> None:
    metrics.on_features([FeatureRow("sku", "A", {"late_events": 2}, 0.0, 0.2)])
    metrics.on_features(
        [
            FeatureRow("sku", "A", {"late_events": 2}, 0.0, 0.4),  # nothing new late
            FeatureRow("sku", "B", {"late_events": 3}, 0.0, 0.1),
            FeatureRow("sku", "C", {"late_events": 0}, 0.0, None),  # not learned yet
            FeatureRow("user", "u", {"late_events": 9}, 0.0),  # shoppers: ignored
        ]
    )
    assert value(metrics, "tillflow_flow_late_events_total") == 5.0
    error = value(metrics, "tillflow_flow_learner_mean_absolute_error", model="elasticity")
    assert error == pytest.approx((0.4 + 0.1) / 2)


def test_price_changes_and_stats(metrics: FlowMetrics) -> None:
    changes = [
        PriceChange("A", 11.0, 10.0, "r", "m", 0.0, 1),
        PriceChange("B", 9.5, 10.0, "r", "m", 0.0, 1),
    ]
    before = time.time()
    metrics.on_price_changes(changes)
    metrics.on_stats({"duplicates": 4, "drift_detections": 2, "dead_lettered:orders": 1})
    assert value(metrics, "tillflow_flow_price_changes_total", direction="up") == 1.0
    assert value(metrics, "tillflow_flow_price_changes_total", direction="down") == 1.0
    assert value(metrics, "tillflow_flow_price_change_ratio_sum") == pytest.approx(0.15)
    last = value(metrics, "tillflow_flow_price_last_change_timestamp_seconds")
    assert last is not None
    assert last >= before
    assert value(metrics, "tillflow_flow_duplicate_events_total") == 4.0
    assert value(metrics, "tillflow_flow_drift_detections_total", model="elasticity") == 2.0


def test_job_failure_is_counted_and_reraised() -> None:
    jobs = JobMetrics(CollectorRegistry())
    with pytest.raises(RuntimeError), jobs.track("gold"):
        raise RuntimeError("boom")
    assert jobs.value("tillflow_batch_job_runs_total", batch_job="gold", outcome="failed") == 1.0
    assert jobs.value("tillflow_batch_job_runs_total", batch_job="gold", outcome="ok") == 0.0
    assert jobs.value("tillflow_batch_job_duration_seconds_count", batch_job="gold") == 1.0
    assert jobs.value("tillflow_batch_job_last_success_timestamp_seconds", batch_job="gold") is None


def test_finished_runs_are_recorded_with_their_rows_and_status() -> None:
    jobs = JobMetrics(CollectorRegistry())
    started = "2026-01-05T00:00:00+00:00"
    jobs.record(JobRun("silver", "ok", started, 12.5, rows_in=100, rows_out=90))
    jobs.record(JobRun("silver", "skipped", started, 0.1))
    assert jobs.value("tillflow_batch_job_runs_total", batch_job="silver", outcome="ok") == 1.0
    assert jobs.value("tillflow_batch_job_runs_total", batch_job="silver", outcome="skipped") == 1.0
    assert jobs.value("tillflow_batch_rows_total", batch_job="silver", direction="read") == 100.0
    assert jobs.value("tillflow_batch_rows_total", batch_job="silver", direction="written") == 90.0
    seconds = jobs.value("tillflow_batch_job_duration_seconds_sum", batch_job="silver")
    assert seconds == pytest.approx(12.6)
