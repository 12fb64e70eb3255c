"""A young shop: the scheduled pipeline waits for data (``skipped``, with why), never fails; the
item factors, which need no days of history, are published meanwhile."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator

import pytest
from bytewax.testing import run_main

from batch.runs import latest_runs
from batch.scheduler import Scheduler
from flows.catalogue import load_catalogue
from flows.dataflow import build_flow
from infra.clients import redis_client
from infra.stack.topics import delete_topics, ensure_topics
from online_models.factors import factors_path, load_factors
from schemas.jobs import scheduled_jobs
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS
from simulator.config import ShopConfig
from simulator.producer import RunOptions, run_shop
from tests.integration.test_batch_pipeline import wait_for_topics

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

CONFIG = ShopConfig(seed=5, products=20, shoppers=100, sessions_per_day=400, competitors=1)


@pytest.fixture(scope="module")
def young_shop(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A day and a half of a shop's events, through Kafka and the flow into bronze."""
    rid = uuid.uuid4().hex[:6]
    root = tmp_path_factory.mktemp("young")
    settings = stack.model_copy(
        update={
            "topic_prefix": f"{stack.topic_prefix}young{rid}.",
            "redis_prefix": f"{stack.redis_prefix}young{rid}:",
            "lake_dir": root / "lake",
            "registry_dir": root / "models",
            "runtime_dir": root / "runtime",
            "lineage_file": root / "lineage.jsonl",
        }
    )
    ensure_topics(settings)
    wait_for_topics(settings)
    asyncio.run(run_shop(settings, CONFIG, RunOptions(days=1.5, ground_truth=None)))
    run_main(build_flow(settings, load_catalogue(settings), tail=False))
    yield settings
    delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])


def test_the_scheduled_pipeline_waits_for_enough_days_and_says_how_many(
    young_shop: Settings,
) -> None:
    clock = [1_000.0]
    scheduler = Scheduler(young_shop, {"pipeline": 3_600.0}, clock=lambda: clock[0])
    try:
        assert scheduler.run(ticks=1) == 1
    finally:
        scheduler.close()
    client = redis_client(young_shop, decode_responses=True)
    try:
        [run] = latest_runs(client, young_shop.keys, job="pipeline")
        state = client.hgetall(young_shop.keys.scheduler_state)
    finally:
        client.close()
    assert run.status == "skipped"
    assert run.trigger == "schedule"
    # silver, gold and features ran; the models wait for three complete days, one exists; the
    # discover list's item factors need no days of history and are published already
    assert re.fullmatch(
        r"waiting for 3 complete days of gold sku_daily; 1 so far "
        r"\(item factors published: [1-9]\d* items\)",
        run.error or "",
    )
    assert load_factors(factors_path(young_shop.registry_dir, young_shop.mlflow_model_prefix))
    assert run.rows_out > 0
    [scheduled] = scheduled_jobs(state)
    assert (scheduled.job, scheduled.last_at, scheduled.next_at) == ("pipeline", 1_000.0, 4_600.0)
