"""The discover list as the API reads it from the real Redis the flows' sinks write."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from api.discover import DEEPEST, GraphReads, profile_of, read_discover, read_popularity
from api.recommendations import MAX_K, depth_for
from flows.sinks.serving import ItemGraphWriter
from online_models.popularity import counts
from online_models.recommender import (
    CATEGORY_ITEMS,
    DISCOVER_DEPTH,
    Candidate,
    discover_candidates,
)
from online_models.similarity import POPULARITY_DAMPING, damped
from schemas.serving import StoredShopper
from schemas.settings import Settings

pytestmark = pytest.mark.integration


async def test_a_neighbour_past_the_popularity_lists_end_is_damped_as_the_last_kept(
    stack: Settings,
) -> None:
    """The popularity list keeps the ``popularity_len`` most popular products; a neighbour
    beyond it is at most as popular as the last one kept, and counts as much: 1, as the API
    counts the list relative to the least popular product it keeps."""
    settings = stack.model_copy(
        update={
            "redis_prefix": f"{stack.redis_prefix}disc{uuid.uuid4().hex[:6]}:",
            "popularity_len": 2,
        }
    )
    writer = ItemGraphWriter(settings)
    writer.write_batch(
        [
            ("HIT", ("", math.log(20_000.0))),
            ("KEPT", ("", math.log(10_000.0))),
            ("RARE", ("", math.log(9_000.0))),  # cut: only the two most popular are kept
            ("SEEN", [("KEPT", 0.6), ("RARE", 0.5)]),
        ]
    )
    writer.close()
    stored = StoredShopper.model_validate_json(
        StoredShopper.encode("u-1", [("SEEN", 1.0)], ["SEEN"], ["SEEN"], [], datetime.now(UTC))
    )
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        found = await read_discover(client, settings.keys, stored, 3)
    finally:
        await client.aclose()
    assert [(sku, source) for sku, _, source in found] == [
        ("KEPT", "similar"),
        ("RARE", "similar"),
        ("HIT", "popular"),
    ]
    kept, rare = found[0][1], found[1][1]
    assert rare / kept == pytest.approx(0.5 / 0.6, rel=1e-3)  # both count 1: not damped


def _reference(
    stored: StoredShopper,
    by_category: dict[str, list[tuple[str, float]]],
    neighbours: dict[str, dict[str, float]],
    popularity: dict[str, float],
    k: int,
) -> list[Candidate]:
    """The discover list built ``k`` deep from values read independently of the API's reads:
    the popularity scores as written counted relative to the least popular (1, also past
    the list's end), each neighbour damped by its count, topped up from the 4k + 1 most
    popular."""
    least = min(popularity.values())
    counted = counts(popularity, least)
    damped_near = {
        sku: damped(near, counted, POPULARITY_DAMPING) for sku, near in neighbours.items()
    }
    best = {c: list(counts(dict(b), least).items()) for c, b in by_category.items()}
    popular = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))[: 4 * k + 1]
    return discover_candidates(profile_of(stored), best, damped_near, popular, k)


async def test_a_shallow_discover_list_is_the_deep_lists_head(stack: Settings) -> None:
    """The API builds a shopper's discover list only as deep as the answer needs, over the
    popularity list it keeps per cache interval; for every k the answer's candidates are the
    head of the list built as deep as the API ever builds it, with the popularity read per
    shopper, for a light shopper, one whose history covers most of the best sellers (the
    popular top-up then reaches far down the list) and one the flows know only by category."""
    settings = stack.model_copy(
        update={"redis_prefix": f"{stack.redis_prefix}disc{uuid.uuid4().hex[:6]}:"}
    )
    rng = random.Random(11)
    skus = [f"P{i:03d}" for i in range(300)]
    popularity = {s: math.log(1_000 - 3 * i) for i, s in enumerate(skus)}  # P000 the best seller
    categories = {s: f"c{i % 4}" for i, s in enumerate(skus)}
    neighbours = {s: {n: rng.random() for n in rng.sample(skus, 25)} for s in skus}
    # The heavy shopper has seen the 75 best sellers; their one recent item's neighbours are
    # mostly among them, so the list is topped up from far down the popularity list.
    neighbours["P290"] = {s: 0.9 for s in skus[:10]} | {"P200": 0.5, "P201": 0.4, "P202": 0.3}
    writer = ItemGraphWriter(settings)
    writer.write_batch(
        [(s, (categories[s], v)) for s, v in popularity.items()]
        + [(s, list(near.items())) for s, near in neighbours.items()]
    )
    writer.close()
    shoppers = {  # (recent, seen, categories)
        "light": (["P150", "P007", "P299"], ["P150", "P007", "P299"], [("c1", 0.7), ("c2", 0.3)]),
        "heavy": (["P290"], ["P290", *skus[:75]], []),
        "category": ([], [], [("c3", 1.0)]),
    }
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        kept = await read_popularity(client, settings.keys)
        for user, (recent, seen, cats) in shoppers.items():
            stored = StoredShopper.model_validate_json(
                StoredShopper.encode(
                    user, [(s, 1.0) for s in seen[:5]], recent, seen, cats, datetime.now(UTC)
                )
            )
            by_category = {
                c: sorted(
                    ((s, v) for s, v in popularity.items() if categories[s] == c),
                    key=lambda kv: (-kv[1], kv[0]),
                )[:CATEGORY_ITEMS]
                for c, _ in cats
            }
            near = {s: neighbours[s] for s in recent[:DISCOVER_DEPTH]}
            deep = _reference(stored, by_category, near, popularity, DEEPEST)
            assert len(deep) == DEEPEST
            for k in (1, 5, 10, 25, MAX_K):
                depth = depth_for(k)
                shallow = await read_discover(client, settings.keys, stored, depth, kept)
                assert shallow == deep[:depth], (user, k)
                assert await read_discover(client, settings.keys, stored, depth) == shallow
    finally:
        await client.aclose()


async def test_damped_neighbours_follow_a_new_read_of_the_neighbours(stack: Settings) -> None:
    """Each item's damped neighbours are computed once per read of its neighbours and of the
    popularity list, and shared by the shoppers who saw the item; when the neighbours are
    read again (the cache interval passed) over the same popularity list, the list uses the
    new ones."""
    settings = stack.model_copy(
        update={"redis_prefix": f"{stack.redis_prefix}disc{uuid.uuid4().hex[:6]}:"}
    )
    popularity = {s: math.log(n) for s, n in {"SEEN": 50, "A": 40, "B": 30, "C": 20}.items()}
    writer = ItemGraphWriter(settings)
    writer.write_batch([(s, ("", v)) for s, v in popularity.items()])
    writer.write_batch([("SEEN", [("A", 0.9), ("B", 0.1)])])
    stored = StoredShopper.model_validate_json(
        StoredShopper.encode("u-1", [("SEEN", 1.0)], ["SEEN"], ["SEEN"], [], datetime.now(UTC))
    )
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        kept = await read_popularity(client, settings.keys)
        graph = GraphReads.kept_for(3600.0)
        before = await read_discover(client, settings.keys, stored, 2, kept, graph)
        assert [sku for sku, _, _ in before] == ["A", "B"]
        writer.write_batch([("SEEN", [("C", 0.8), ("B", 0.2)])])
        assert await read_discover(client, settings.keys, stored, 2, kept, graph) == before
        graph.neighbours.invalidate("SEEN")  # as when the cache interval has passed
        after = await read_discover(client, settings.keys, stored, 2, kept, graph)
        expected = _reference(stored, {}, {"SEEN": {"C": 0.8, "B": 0.2}}, popularity, 2)
        assert after == expected
        assert [sku for sku, _, _ in after] == ["C", "B"]
    finally:
        writer.close()
        await client.aclose()
