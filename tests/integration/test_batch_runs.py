"""Job runs and run requests in the real Redis, as the admin API reads and writes them."""

from __future__ import annotations

import pytest

from batch.runs import latest_runs, record_run, request_job
from infra.clients import SyncRedis
from schemas.jobs import JobRun
from schemas.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def test_runs_are_listed_newest_first_and_filtered_by_job(
    stack: Settings, redis_client: SyncRedis
) -> None:
    keys = stack.model_copy(update={"redis_prefix": f"{stack.redis_prefix}runs:"}).keys
    for i, job in enumerate(["silver", "gold", "silver"]):
        record_run(redis_client, keys, JobRun(job, "ok", f"2026-01-05T00:00:0{i}+00:00", 1.0, i, i))
    runs = latest_runs(redis_client, keys, 10)
    assert [(r.job, r.rows_in) for r in runs] == [("silver", 2), ("gold", 1), ("silver", 0)]
    assert [r.rows_in for r in latest_runs(redis_client, keys, 1, job="silver")] == [2]


def test_a_request_lands_on_the_stream_and_unknown_jobs_are_refused(
    stack: Settings, redis_client: SyncRedis
) -> None:
    keys = stack.model_copy(update={"redis_prefix": f"{stack.redis_prefix}req:"}).keys
    entry = request_job(redis_client, keys, "train")
    assert redis_client.xrange(keys.job_requests) == [(entry, {"job": "train"})]
    with pytest.raises(ValueError, match="unknown job 'retrain'"):
        request_job(redis_client, keys, "retrain")
