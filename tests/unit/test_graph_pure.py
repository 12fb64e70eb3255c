"""The graph's pure parts: co-purchase counts, pair deltas, PageRank, gold diffs, candidates."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from graph.copurchase import PurchaseMatrix, lift
from graph.gold import changes
from graph.influence import pagerank, ranks, weighted_degree
from graph.load import pair_deltas
from online_models.recommender import Profile, discover
from schemas.lake import GOLD_SCHEMAS, USER_ITEM_INTERACTIONS, gold_path
from tests.graph_candidates import merge_neighbours, recommend_with_graph


def brute_counts(sets: dict[str, set[str]]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for items in sets.values():
        for pair in itertools.combinations(sorted(items), 2):
            counts[pair] = counts.get(pair, 0) + 1
    return counts


def random_sets(rng: random.Random, users: int, items: int) -> dict[str, set[str]]:
    return {
        f"u{u}": {f"s{rng.randrange(items)}" for _ in range(rng.randrange(0, 6))}
        for u in range(users)
    }


@pytest.mark.parametrize("seed", range(5))
def test_matrix_counts_equal_brute_force(seed: int) -> None:
    sets = random_sets(random.Random(seed), 60, 15)
    bought = [(u, s) for u, items in sets.items() for s in items]
    matrix = PurchaseMatrix.of(bought + bought[:5])  # repeats count once
    assert {(p.a, p.b): p.weight for p in matrix.pairs()} == brute_counts(sets)
    assert matrix.shoppers == sum(1 for items in sets.values() if items)


@pytest.mark.parametrize("seed", range(5))
def test_pair_deltas_move_counts_from_before_to_after(seed: int) -> None:
    rng = random.Random(seed)
    before = random_sets(rng, 40, 12)
    after = {
        u: (items | {f"s{rng.randrange(12)}"}) - {f"s{rng.randrange(12)}"}
        for u, items in before.items()
    }
    old, new = brute_counts(before), brute_counts(after)
    deltas = pair_deltas(before, after)
    for pair in set(old) | set(new):
        assert new.get(pair, 0) - old.get(pair, 0) == deltas.get(pair, 0), pair


@pytest.mark.parametrize(
    ("weight", "a", "b", "n", "expected"),
    [(1, 1, 1, 1, 1.0), (2, 2, 2, 4, 2.0), (5, 10, 10, 100, 5.0), (1, 10, 10, 10, 0.1)],
)
def test_lift(weight: int, a: int, b: int, n: int, expected: float) -> None:
    assert lift(weight, a, b, n) == pytest.approx(expected)


def test_pagerank_of_a_symmetric_cycle_is_uniform_and_a_hub_leads() -> None:
    cycle = pagerank(["a", "b", "c"], [("a", "b", 1.0), ("b", "c", 1.0), ("c", "a", 1.0)])
    assert all(v == pytest.approx(1 / 3) for v in cycle.values())
    star = pagerank(["h", "x", "y", "z", "lonely"], [("h", s, 1.0) for s in "xyz"])
    assert ranks(star)["h"] == 1
    assert star["lonely"] < star["x"]
    assert sum(star.values()) == pytest.approx(1.0)
    heavier = pagerank(["a", "b", "c"], [("a", "b", 10.0), ("a", "c", 1.0)])
    assert heavier["b"] > heavier["c"]
    assert weighted_degree([("a", "b", 10.0), ("a", "c", 1.0)])["a"] == 11.0


def interactions(rows: list[tuple[str, str, int]]) -> pa.Table:
    t = datetime(2026, 1, 5, tzinfo=UTC)
    base = {"carts": 0, "purchases": 0, "first_time": t, "last_time": t}
    records = [{**base, "user_id": u, "sku": s, "views": v, "weight": float(v)} for u, s, v in rows]
    return pa.Table.from_pylist(records, GOLD_SCHEMAS[USER_ITEM_INTERACTIONS])


def test_gold_changes_find_new_changed_and_deleted_rows(tmp_path: Path) -> None:
    path = gold_path(tmp_path, USER_ITEM_INTERACTIONS)
    write_deltalake(path, interactions([("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 1)]))
    first = changes(tmp_path, USER_ITEM_INTERACTIONS, ["user_id", "sku"], None)
    assert first.full
    assert len(first.upserts) == 3
    rewritten = interactions([("u1", "a", 1), ("u1", "b", 5), ("u3", "c", 1)])
    write_deltalake(path, rewritten, mode="overwrite")
    diff = changes(tmp_path, USER_ITEM_INTERACTIONS, ["user_id", "sku"], first.version)
    assert not diff.full
    assert sorted(zip(diff.upserts["user_id"], diff.upserts["sku"], strict=True)) == [
        ("u1", "b"),
        ("u3", "c"),
    ]
    assert diff.deleted.to_dict("records") == [{"user_id": "u2", "sku": "a"}]
    same = changes(tmp_path, USER_ITEM_INTERACTIONS, ["user_id", "sku"], diff.version)
    assert same.upserts.empty
    assert same.deleted.empty


def test_gold_changes_reload_in_full_when_the_version_is_gone(tmp_path: Path) -> None:
    write_deltalake(gold_path(tmp_path, USER_ITEM_INTERACTIONS), interactions([("u", "a", 1)]))
    diff = changes(tmp_path, USER_ITEM_INTERACTIONS, ["user_id", "sku"], 99)
    assert diff.full
    assert len(diff.upserts) == 1


def test_graph_neighbours_add_candidates_without_losing_the_stream() -> None:
    streaming = {"tea": {"milk": 4.0, "cake": 2.0}}
    graph = {"tea": [("lemon", 30.0), ("milk", 15.0)], "coffee": [("sugar", 1.0)]}
    merged = merge_neighbours(streaming, graph, 0.5)
    assert merged["tea"] == {"milk": 1.25, "cake": 0.5, "lemon": 0.5}
    assert merged["coffee"] == {"sugar": 0.5}
    shopper = Profile([], [], ["tea"])
    ranked, source = recommend_with_graph(shopper, {}, streaming, graph, [("x", 1.0)], k=3)
    assert source == "similar"
    assert [s for s, _ in ranked][:2] == ["milk", "cake"]
    assert "lemon" in {s for s, _ in ranked}
    alone, _ = discover(shopper, {}, streaming, [("x", 1.0)], k=3)
    assert "lemon" not in {s for s, _ in alone}
