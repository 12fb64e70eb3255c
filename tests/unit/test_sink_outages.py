"""Sinks ride out outages (retry forever with capped backoff) and set aside what they cannot
encode."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from flows.metrics import FlowMetrics
from flows.records import LakeRow
from flows.recovery_lock import recovery_lineage
from flows.sinks.context import SinkContext, process_lineage
from flows.sinks.lake import encodable_arrow
from flows.sinks.outage import Backoff, RideOut
from flows.sinks.set_aside import encode_each


def _metrics() -> FlowMetrics:
    return FlowMetrics(CollectorRegistry())


def _value(m: FlowMetrics, name: str, step: str) -> float:
    got = m.registry.get_sample_value(name, {"step": step})
    return 0.0 if got is None else got


class Flaky:
    """Fails ``failures`` times with ``error``, then answers."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "written"


@pytest.mark.parametrize(
    "error",
    [redis.ConnectionError("refused"), redis.TimeoutError("stalled"), OSError("reset")],
)
def test_a_write_is_retried_until_the_service_takes_it_however_long(error: Exception) -> None:
    metrics, waits = _metrics(), []
    blocked_seen: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        blocked_seen.append(_value(metrics, "tillflow_flow_sink_blocked", "features"))

    ride_out = RideOut("features", metrics, Backoff(base_s=0.1, cap_s=5.0), sleep=sleep)
    write = Flaky(failures=200, error=error)  # far longer than any retry budget would allow
    assert ride_out(write) == "written"
    assert write.calls == 201
    assert waits[:4] == [0.1, 0.2, 0.4, 0.8]
    assert max(waits) == 5.0
    assert sum(waits) > 60  # a minute-long outage is waited out, not given up on
    assert set(blocked_seen) == {1.0}
    assert _value(metrics, "tillflow_flow_sink_blocked", "features") == 0.0
    assert _value(metrics, "tillflow_flow_sink_retries_total", "features") == 200


def test_a_bug_is_not_retried() -> None:
    ride_out = RideOut("features", _metrics(), sleep=lambda _s: None)
    write = Flaky(failures=1, error=KeyError("bug"))
    with pytest.raises(KeyError):
        ride_out(write)
    assert write.calls == 1


def test_values_that_cannot_be_encoded_are_set_aside_counted_and_logged() -> None:
    metrics = _metrics()
    with capture_logs() as logs:
        got = encode_each("prices", metrics, [1.0, float("nan"), 2.0], _finite_text, key=str)
    assert got == [(1.0, "1.0"), (2.0, "2.0")]
    assert _value(metrics, "tillflow_flow_sink_set_aside_total", "prices") == 1
    assert logs[0]["step"] == "prices"
    assert logs[0]["key"] == "nan"
    assert "not finite" in logs[0]["error"]


def _finite_text(v: float) -> str:
    if v != v:
        raise ValueError("not finite")
    return str(v)


def _row(offset: int, raw: bytes) -> LakeRow:
    return LakeRow(
        event_id=f"e{offset}",
        event_us=1_700_000_000_000_000,
        topic="orders",
        partition=0,
        offset=offset,
        key=None,
        raw=raw,
    )


def test_a_row_arrow_refuses_is_set_aside_and_the_batch_written() -> None:
    metrics = _metrics()
    ctx = SinkContext("bronze", 0, metrics)
    rows = [_row(0, b'{"a": 1}'), _row(1, b"\xff\xfe not utf-8"), _row(2, b'{"a": 2}')]
    table = encodable_arrow(ctx, rows, datetime.now(UTC))
    assert table.column("kafka_offset").to_pylist() == [0, 2]
    assert _value(metrics, "tillflow_flow_sink_set_aside_total", "bronze") == 1


def test_the_recovery_lineage_is_kept_with_the_state_and_new_without_it(tmp_path: Path) -> None:
    state = tmp_path / "recovery"
    first = recovery_lineage(state)
    assert recovery_lineage(state) == first  # a restart from this state: same lineage
    assert recovery_lineage(tmp_path / "fresh") != first  # fresh state: another one
    assert process_lineage(["bytewax.run", "f:flow", "-r", str(state)]) == first
    assert process_lineage(["bytewax.run", "f:flow"]) != process_lineage(["bytewax.run", "f:flow"])
