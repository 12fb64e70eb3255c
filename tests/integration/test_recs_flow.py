"""Both recommendation lists through the real flow: a small hand-built log → Kafka → the
dataflow (to the end of the topics) → Redis → the API.

The log is small on purpose (a few hundred events): the flow runs once, in process, and
stops at the end of its topics; every check then reads what the flow wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import redis
from bytewax.testing import run_main
from confluent_kafka import Producer
from fastapi.testclient import TestClient

from api.discover import Popularity
from api.main import create_app
from benchmarks.recs import served_lists
from flows.catalogue import load_catalogue, store_catalogue
from flows.dataflow import build_flow
from infra.stack.topics import delete_topics, ensure_topics
from online_models.recommender import likely_again
from schemas.catalogue import CatalogueItem
from schemas.serving import StoredShopper
from schemas.settings import Settings
from schemas.topics import ALL_TOPICS, USER_ACTIVITY
from tests.credentials import admin_headers
from tests.flow_processes import isolated_settings

pytestmark = pytest.mark.integration

CATEGORY = {"A": "tea", "B": "tea", "C": "cake", "D": "cake", "E": "milk", "F": "milk"}
CROWD = 30  # shoppers who each view A, then B, then C
# (shopper, skus viewed in order): the crowd, then shoppers whose lists are checked exactly
LOG: list[tuple[str, list[str]]] = [
    *[(f"u-crowd{n:02d}", ["A", "B", "C"]) for n in range(CROWD)],
    *[(f"u-other{n:02d}", ["E", "F"]) for n in range(10)],
    ("u-again", ["D", "E", "D", "D", "E", "F"]),  # D three times, E twice, F once
    ("u-ghost", ["A", "NOT-IN-CATALOGUE"]),
]


@dataclass(frozen=True)
class Run:
    settings: Settings


def _produce(settings: Settings) -> int:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    start = datetime.now(UTC) - timedelta(minutes=30)
    n = 0
    for user, skus in LOG:
        for sku in skus:
            n += 1
            event = {
                "event_id": f"recs-{n}",
                "event_time": (start + timedelta(seconds=n)).isoformat(),
                "user_id": user,
                "session_id": f"s-{user}",
                "action": "view",
                "sku": sku,
            }
            producer.produce(settings.topic(USER_ACTIVITY), orjson.dumps(event), key=user.encode())
    producer.flush(30)
    return n


@pytest.fixture(scope="module")
def flow_run(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    settings = isolated_settings(stack, "recs", Path(tmp_path_factory.mktemp("recs")))
    ensure_topics(settings)
    try:
        store_catalogue(
            settings,
            [
                CatalogueItem(sku=s, category=c, list_price=5.0, unit_cost=2.0)
                for s, c in CATEGORY.items()
            ],
        )
        assert _produce(settings) > 0
        run_main(build_flow(settings, load_catalogue(settings), tail=False))  # to the end
        yield Run(settings)
    finally:
        delete_topics(settings, [settings.topic(t) for t in ALL_TOPICS])


def _stored(settings: Settings, user: str) -> StoredShopper:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        raw = client.get(settings.keys.recommendations(user))
    finally:
        client.close()
    assert raw is not None, f"no lists stored for {user}"
    return StoredShopper.model_validate_json(raw)


def _popularity(settings: Settings) -> dict[str, float]:
    """The popularity list the flow published, counted as the API counts it."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        ranked = client.zrevrange(settings.keys.popularity, 0, -1, withscores=True)
    finally:
        client.close()
    return Popularity.of([(sku.decode(), float(score)) for sku, score in ranked]).scores


def test_items_viewed_in_the_same_histories_become_neighbours(flow_run: Run) -> None:
    s = flow_run.settings
    client = redis.Redis.from_url(s.redis_url, decode_responses=True)
    near = {sku: client.hgetall(s.keys.neighbours(sku)) for sku in CATEGORY}
    client.close()
    assert set(near["A"]) == {"B", "C"}  # the crowd's A, B, C histories; nobody else
    assert set(near["C"]) == {"A", "B"}
    assert all(0 < float(w) <= 1 for n in near.values() for w in n.values())
    assert not any("NOT-IN-CATALOGUE" in n for n in near.values())  # never a candidate


def test_every_shopper_is_stored_with_their_own_catalogue_items(flow_run: Run) -> None:
    for user, skus in LOG:
        stored = _stored(flow_run.settings, user)
        own = set(skus) & set(CATEGORY)  # catalogue products only
        assert {i.sku for i in stored.again} == own, user
        assert set(stored.recent) == own == set(stored.seen), user


def test_buy_again_ranks_the_shoppers_most_repeated_items_first(flow_run: Run) -> None:
    stored = _stored(flow_run.settings, "u-again")
    assert [i.sku for i in stored.again] == ["D", "E", "F"]


def test_the_api_serves_both_lists_from_what_the_flow_stored(flow_run: Run) -> None:
    s = flow_run.settings
    k = s.recommendations_k
    with TestClient(create_app(s), headers=admin_headers(s)) as api:

        def served(user: str, name: str) -> list[str]:
            body = api.get(f"/recommendations/{user}", params={"list": name, "k": k}).json()
            assert (body["list"], body["source"]) == (name, "streaming")
            return [i["sku"] for i in body["items"]]

        popularity = _popularity(s)
        for user, _skus in LOG:
            stored = [(i.sku, i.score) for i in _stored(s, user).again]
            # the stored list, the likelier purchases first (by the popularity list)
            own = [sku for sku, _ in likely_again(stored, popularity)]
            assert sorted(own) == sorted(sku for sku, _ in stored)
            assert served(user, "again") == own
            discover = served(user, "discover")
            assert sorted(discover) == sorted(set(CATEGORY) - set(own))  # every new item
            assert served(user, "mixed") == [*own, *discover]  # buy again first: fewer than 9
        # cold start, one catalogue view: that item's neighbours first
        assert set(served("u-ghost", "discover")[:2]) == {"B", "C"}
        # no neighbour is new to the crowd: their category's best seller they have not seen
        assert served("u-crowd00", "discover")[0] == "D"


def test_the_recs_benchmark_scores_the_lists_the_api_serves(flow_run: Run) -> None:
    """``benchmarks.recs`` reads each shopper's lists through the API's own read, so it
    measures what ``GET /recommendations`` serves (u-again's buy again is re-ordered by
    popularity: the items everybody views before D, the one they view most)."""
    s = flow_run.settings
    users = [user for user, _ in LOG]
    lists = asyncio.run(served_lists(s, [*users, "u-never-seen"]))
    assert set(lists) == set(users)  # a shopper the flow never stored has no lists
    assert lists["u-again"].again[0] != _stored(s, "u-again").again[0].sku == "D"
    k = s.recommendations_k
    with TestClient(create_app(s), headers=admin_headers(s)) as api:
        for user in users:
            for name, found in (("again", lists[user].again), ("discover", lists[user].discover)):
                body = api.get(f"/recommendations/{user}", params={"list": name, "k": k}).json()
                assert [i["sku"] for i in body["items"]] == found[:k], (user, name)
