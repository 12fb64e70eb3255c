"""``tillflow batch skew`` against the real Feast online store, lake and Redis.

The online values are what the flows' feature code computes from a fixture's events, written
to Feast's online store by Feast itself; the same events are in silver. One product is served
by a variant that counts order lines instead of units (an injected skew): the job reports it
on the gold table, in Redis, as the scheduler's gauges and on the admin API.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.main import create_app
from batch.jobs import run_job
from batch.lake import append
from featurestore.repo import SKU_VIEW, apply
from flows.catalogue import store_catalogue
from flows.features import SkuFeatures, iso
from flows.records import SkuSignal
from infra.clients import redis_client
from observability.governance import GovernanceCollector
from schemas.catalogue import CatalogueItem
from schemas.features import SKU_FEATURES, stored_in
from schemas.governance import FEATURE_SKEW
from schemas.lake import ORDER_LINES, SILVER_SCHEMAS, USER_ACTIVITY, gold_path, silver_path
from schemas.settings import Settings
from tests.credentials import admin_headers
from tests.unit.test_feature_skew import LineCountingFeatures, _events

pytestmark = pytest.mark.integration

SKEWED = "b"  # served by LineCountingFeatures
_EMPTY = {"int": 0, "float": 0.0, "string": "", "json": ""}


def _silver(settings: Settings, events: pd.DataFrame) -> None:
    def stamp(t: float) -> datetime:
        return datetime.fromtimestamp(t, UTC)

    views = events[events["kind"] != "sale"]
    append(
        silver_path(settings.lake_dir, USER_ACTIVITY),
        pa.Table.from_pylist(
            [
                {
                    "event_id": uuid.uuid4().hex,
                    "event_time": stamp(e.t),
                    "date": stamp(e.t).date().isoformat(),
                    "user_id": "u1",
                    "session_id": "s1",
                    "action": e.kind,
                    "sku": e.sku,
                    "query": None,
                }
                for e in views.itertuples()
            ],
            SILVER_SCHEMAS[USER_ACTIVITY],
        ),
        marks={},
        partition_by=["date"],
    )
    sales = events[events["kind"] == "sale"]
    append(
        silver_path(settings.lake_dir, ORDER_LINES),
        pa.Table.from_pylist(
            [
                {
                    "event_id": uuid.uuid4().hex,
                    "event_time": stamp(e.t),
                    "date": stamp(e.t).date().isoformat(),
                    "order_id": f"o{i}",
                    "user_id": "u1",
                    "store_id": "s1",
                    "line": 0,
                    "sku": e.sku,
                    "quantity": int(e.quantity),
                    "unit_price": float(e.price),
                }
                for i, e in enumerate(sales.itertuples())
            ],
            SILVER_SCHEMAS[ORDER_LINES],
        ),
        marks={},
        partition_by=["date"],
    )


def _serve(settings: Settings, events: pd.DataFrame) -> None:
    states: dict[str, SkuFeatures] = {}
    for e in events.itertuples():
        kind = LineCountingFeatures if e.sku == SKEWED else SkuFeatures
        state = states.setdefault(e.sku, kind())
        state.apply(SkuSignal(kind=e.kind, t=e.t, quantity=int(e.quantity), price=float(e.price)))
    defaults = {f.name: _EMPTY[f.dtype] for f in stored_in(SKU_FEATURES, "feast")}
    rows = []
    for sku, state in states.items():
        values = state.values(published_price=5.0)
        rows.append(
            {
                **defaults,
                **{k: v for k, v in values.items() if k in defaults},
                "event_time": iso(state.watermark),
                "sku": sku,
                "event_timestamp": datetime.fromtimestamp(state.watermark, UTC),
            }
        )
    apply(settings).write_to_online_store(SKU_VIEW, pd.DataFrame(rows))


@pytest.fixture(scope="module")
def skewed_shop(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = Path(tmp_path_factory.mktemp("skew"))
    settings = stack.model_copy(
        update={
            "redis_prefix": f"{stack.redis_prefix}skew{uuid.uuid4().hex[:6]}:",
            "lake_dir": root / "lake",
            "runtime_dir": root / "runtime",
            "catalogue_file": root / "catalogue.jsonl",
            "rate_limit_per_s": 0.0,
        }
    )
    store_catalogue(
        settings,
        [CatalogueItem(sku=s, category="tea", list_price=5.0, unit_cost=2.0) for s in "abc"],
    )
    events = _events(7)
    _silver(settings, events)
    _serve(settings, events)
    return settings


def test_the_skew_job_reports_the_injected_skew_everywhere(skewed_shop: Settings) -> None:
    run, result = run_job(skewed_shop, "skew")
    assert run.status == "ok", run.error
    assert result is not None
    assert result.details["entities"] == 3
    assert "units_24h" in result.details["breaches"]
    rows = DeltaTable(str(gold_path(skewed_shop.lake_dir, FEATURE_SKEW))).to_pandas()
    by_feature = rows.set_index("feature")
    # one product of three is skewed: a third of the compared values differ
    assert by_feature.loc["units_24h", "mismatches"] == 1
    assert by_feature.loc["units_24h", "mismatch_rate"] == pytest.approx(1 / 3)
    assert by_feature.loc["views_24h", "mismatches"] == 0
    assert not by_feature.loc["revenue_24h", "breached"]

    registry = CollectorRegistry()
    client = redis_client(skewed_shop)
    registry.register(GovernanceCollector(client, skewed_shop.keys))
    rate = registry.get_sample_value(
        "tillflow_feature_skew_mismatch_rate", {"feature": "units_24h"}
    )
    assert rate == pytest.approx(1 / 3)
    assert registry.get_sample_value("tillflow_feature_skew_breach", {"feature": "units_24h"}) == 1
    assert registry.get_sample_value("tillflow_feature_skew_breach", {"feature": "views_24h"}) == 0
    client.close()

    with TestClient(create_app(skewed_shop), headers=admin_headers(skewed_shop)) as api:
        body = api.get("/admin/governance").json()
    assert body["audit"] is None
    served = {f["feature"]: f for f in body["skew"]["features"]}
    assert served["units_24h"]["breached"] is True
    assert served["views_24h"]["mismatches"] == 0


def test_a_sample_smaller_than_the_catalogue_compares_only_the_sampled(
    skewed_shop: Settings,
) -> None:
    settings = skewed_shop.model_copy(update={"skew_sample": 2})
    run, result = run_job(settings, "skew")
    assert run.status == "ok", run.error
    assert result is not None
    assert result.details["entities"] == 2
    from batch.skew import run_skew

    chosen = run_skew(settings, rng=random.Random(0)).details["entities"]
    assert chosen == 2
