"""The ranker's training on the served-list log, over a real Delta lake (bronze → silver by the
batch job → DuckDB): items shown and then carted or bought are positives, items shown and not
taken real negatives (looked at or not), every one of them kept; the ranker trained on them
passes the order gate and is promoted through the real MLflow registry; without the log it
falls back to sampled negatives and says so.

The log is hand-built so that every label is known: each shopper is shown one list of
:data:`SHOWN` items a day, carts its third item ten minutes later (taken), views its last
:data:`BROWSED` items meanwhile without taking any, and carts its sixth two hours later (too
late to count as taken).
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from batch.ranker import CHOSEN_WITHIN, HORIZON, NEGATIVES, K, ranker_data, train_ranker
from batch.ranker_data import load_events, load_served, served_set
from batch.silver import run_silver
from batch.training import train_and_register_ranker
from flows.records import LakeRow
from flows.sinks.lake import to_arrow
from infra.errors import ServiceUnavailable
from infra.readiness import require_mlflow
from online_models.ranking import RANKER_FEATURES
from registry import CHAMPION, ModelRegistry
from schemas.lake import bronze_path
from schemas.serving import CANDIDATE_SOURCES
from schemas.settings import Settings
from schemas.topics import (
    COMPETITOR_PRICES,
    INVENTORY,
    ORDERS,
    RECOMMENDATIONS_SERVED,
    USER_ACTIVITY,
    Topic,
)
from tests.registered import model_prefix

pytestmark = pytest.mark.integration

# Enough shoppers that the holdout day's lists can pass the order gate on ties of HR@10
# (every list's taken item is in the own order's top K already): ~190 at the least.
USERS = [f"u{n:03d}" for n in range(240)]
PRODUCTS = [f"P{n:02d}" for n in range(24)]
CATEGORY = {p: ("tea", "cake", "milk")[n % 3] for n, p in enumerate(PRODUCTS)}
SHOWN = NEGATIVES + 5  # more than the fallback samples, so that keeping them all shows
DAYS = 4
SERVED_DAYS = (1, 2, 3)  # lists served on these days: training (1, 2), holdout (3)
BROWSED = SHOWN - K  # the items below the top K: looked at, never taken


@dataclass(frozen=True)
class Shown:
    user: str
    at: datetime
    items: list[tuple[str, str]]  # (sku, source) in the order shown
    taken: set[str]  # carted within CHOSEN_WITHIN
    viewed: set[str]  # viewed within CHOSEN_WITHIN, not taken: negatives
    late: str  # carted after CHOSEN_WITHIN: still a negative


@dataclass(frozen=True)
class Lake:
    root: Path
    shown: list[Shown]
    last: datetime


class _Bronze:
    def __init__(self) -> None:
        self.rows: dict[str, list[LakeRow]] = {}

    def add(self, topic: Topic, at: datetime, body: dict[str, object]) -> None:
        rows = self.rows.setdefault(topic.name, [])
        event_id = f"{topic.name}-{len(rows)}"
        raw = orjson.dumps({"event_id": event_id, "event_time": at.isoformat(), **body})
        us = int(at.timestamp() * 1_000_000)
        rows.append(LakeRow(topic.name, 0, len(rows), None, raw, event_id, us))

    def write(self, root: Path) -> None:
        topics = {t.name: t for t in (ORDERS, USER_ACTIVITY, INVENTORY, COMPETITOR_PRICES)}
        topics[RECOMMENDATIONS_SERVED.name] = RECOMMENDATIONS_SERVED
        for name, rows in self.rows.items():
            path = bronze_path(root, topics[name])
            path.mkdir(parents=True, exist_ok=True)
            table = to_arrow(rows, datetime.now(UTC))
            write_deltalake(str(path), table, mode="append", partition_by=["date"])


def _view(bronze: _Bronze, user: str, sku: str, at: datetime, action: str = "view") -> None:
    body = {"user_id": user, "session_id": f"s-{user}", "action": action, "sku": sku}
    bronze.add(USER_ACTIVITY, at, body)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    rng = random.Random(5)
    root = Path(tmp_path_factory.mktemp("ranker-served")) / "lake"
    last = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    first = last - timedelta(days=DAYS)
    bronze = _Bronze()
    for sku in PRODUCTS:
        stock = {"sku": sku, "store_id": "web", "on_hand": 50}
        bronze.add(INVENTORY, first, stock)
        bronze.add(COMPETITOR_PRICES, first, {"sku": sku, "competitor": "c1", "price": 4.5})
    _view(bronze, USERS[0], PRODUCTS[0], first)  # the log's first event: two training days
    shown: list[Shown] = []
    for day in range(DAYS):
        start = first + timedelta(days=day)
        for n, user in enumerate(USERS):
            for sku in rng.sample(PRODUCTS, 5):  # the day's browsing, before any list
                _view(bronze, user, sku, start + timedelta(minutes=rng.randrange(1, 360)))
            line = {"sku": rng.choice(PRODUCTS), "quantity": 1, "unit_price": "5.00"}
            order = {"order_id": f"o-{day}-{user}", "user_id": user, "store_id": "web"}
            bronze.add(ORDERS, start + timedelta(hours=7), {**order, "lines": [line]})
            if day not in SERVED_DAYS:
                continue
            at = start + timedelta(hours=8, minutes=n)
            items = [
                (sku, CANDIDATE_SOURCES[i % len(CANDIDATE_SOURCES)])
                for i, sku in enumerate(rng.sample(PRODUCTS, SHOWN))
            ]
            taken, late = {items[2][0]}, items[5][0]
            viewed = {sku for sku, _ in items[-BROWSED:]}
            served = {
                "user_id": user,
                "list_name": "mixed",
                "served_by": "streaming",
                "items": [
                    {"sku": s, "source": src, "score": 1.0 / (1 + i)}
                    for i, (s, src) in enumerate(items)
                ],
            }
            bronze.add(RECOMMENDATIONS_SERVED, at, served)
            for sku in sorted(viewed):
                _view(bronze, user, sku, at + timedelta(minutes=5))
            for sku in sorted(taken):
                _view(bronze, user, sku, at + timedelta(minutes=10), "add_to_cart")
            _view(bronze, user, late, at + CHOSEN_WITHIN + timedelta(hours=1), "add_to_cart")
            shown.append(Shown(user, at, items, taken, viewed, late))
    _view(bronze, USERS[0], PRODUCTS[0], last)  # the log's last event: the holdout's end
    bronze.write(root)
    run_silver(root)
    return Lake(root, shown, last)


def _catalogue() -> pa.Table:
    return pa.table({"sku": PRODUCTS, "category": [CATEGORY[p] for p in PRODUCTS]})


def test_served_items_are_labelled_by_what_the_shopper_took_next(lake: Lake) -> None:
    con = duckdb.connect()
    try:
        load_events(lake.root, con)
        assert load_served(lake.root, con) == len(lake.shown)
        cutoff = lake.last - HORIZON  # the holdout day's lists
        data = served_set(con, cutoff, HORIZON, CHOSEN_WITHIN, CATEGORY)
    finally:
        con.close()
    expected = [s for s in lake.shown if s.at >= cutoff]
    assert data.queries == len(expected) == len(USERS)
    for query, shown in enumerate(expected):
        rows = np.flatnonzero(data.groups == query)
        assert [data.candidate_skus[r] for r in rows] == [sku for sku, _ in shown.items]
        taken = {data.candidate_skus[r] for r in rows if data.labels[r] == 1}
        assert taken == shown.taken  # the items only looked at and the late cart are negatives
        assert not taken & shown.viewed
        assert shown.late not in taken
        for r, (_, source) in zip(rows, shown.items, strict=True):
            column = RANKER_FEATURES.index(f"from_{source}")
            assert data.features[r, column] == 1.0
            others = [RANKER_FEATURES.index(f"from_{s}") for s in CANDIDATE_SOURCES if s != source]
            assert not data.features[r, others].any()


def test_the_ranker_trains_on_every_real_negative_of_the_served_lists(lake: Lake) -> None:
    trained = train_ranker(lake.root, _catalogue())
    served = len(USERS) * len(SERVED_DAYS)
    assert trained.training_set.startswith(f"served lists ({served} in the log)")
    training = [s for s in lake.shown if s.at < lake.last - HORIZON]
    assert trained.metrics["served_lists"] == len(lake.shown)
    positives = sum(len(s.taken) for s in training)
    negatives = sum(SHOWN - len(s.taken) for s in training)
    assert negatives > len(training) * NEGATIVES  # none sampled away
    assert trained.metrics["train_negatives"] == negatives
    assert trained.metrics["train_rows"] == positives + negatives
    assert trained.metrics["test_queries"] == len(USERS)


@pytest.fixture(scope="module")
def models(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = stack.model_copy(
        update={
            "mlflow_model_prefix": model_prefix(),
            "registry_dir": tmp_path_factory.mktemp("ranker-copies"),
        }
    )
    try:
        require_mlflow(settings)
    except ServiceUnavailable as exc:
        pytest.fail(f"this test needs the MLflow server of `tillflow up`: {exc}", pytrace=False)
    return settings


def test_the_promoted_ranker_puts_what_shoppers_take_above_what_they_only_look_at(
    lake: Lake, models: Settings
) -> None:
    """Through the real MLflow registry: the ranker trained on the served lists passes the
    order gate on the holdout day, is champion, and keeps each holdout list's taken item in
    its top K although the shoppers looked at :data:`BROWSED` other items of the list (a
    ranker that learned what is looked at next puts those first and the taken item out)."""
    registry = ModelRegistry.from_settings(models)
    trained, outcome = train_and_register_ranker(
        models, registry, ranker_data(lake.root, _catalogue())
    )
    assert trained.gate.applied
    assert trained.gate.passed, trained.gate.reason
    assert outcome.promoted
    assert registry.alias("ranker", CHAMPION) == outcome.version.version
    test = trained.test
    scores = np.asarray(trained.model.predict_proba(test.features))[:, 1]
    holdout = [s for s in lake.shown if s.at >= lake.last - HORIZON]
    assert test.queries == len(holdout)
    for query, shown in enumerate(holdout):
        rows = np.flatnonzero(test.groups == query)
        top = {test.candidate_skus[r] for r in rows[np.argsort(-scores[rows], kind="stable")][:K]}
        assert shown.taken <= top, (shown.user, shown.taken, top)


def test_without_a_served_log_the_training_falls_back_to_sampled_negatives(
    lake: Lake, tmp_path: Path
) -> None:
    silver_only = tmp_path / "lake"
    shutil.copytree(lake.root / "silver", silver_only / "silver")
    trained = train_ranker(silver_only, _catalogue())
    assert trained.training_set.startswith("sampled negatives (no served-list log in the lake)")
    assert trained.metrics["served_lists"] == 0
