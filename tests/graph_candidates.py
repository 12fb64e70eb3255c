"""The co-purchase graph as a second candidate source for the recommender (an experiment).

Not part of the serving path: ``benchmarks/graph.py`` measures what it would change (HR@10 with
and without it) and the unit tests check the merge.

The streaming recommender knows what was co-interacted *recently* (decayed, 30 neighbours per
item); the graph knows which products the same shoppers *bought* over all of gold. The graph's
list for an item is its highest-lift co-purchases with at least ``MIN_SHOPPERS`` shoppers
(``graph.queries.candidates``; by weight they would only repeat the popular items). Both are
neighbour lists per item; they are merged by scaling each list to its strongest neighbour and
adding the graph's with weight ``graph_weight``, then ranked as usual by
:func:`online_models.recommender.discover`.

>>> merged = merge_neighbours(
...     {"tea": {"milk": 4.0, "cake": 2.0}}, {"tea": [("lemon", 30.0), ("milk", 15.0)]}, 0.5
... )
>>> merged["tea"]
{'milk': 1.25, 'cake': 0.5, 'lemon': 0.5}
>>> graph = {"tea": [("lemon", 3.0)]}
>>> shopper = Profile([], [], ["tea"])
>>> recommend_with_graph(shopper, {}, {}, graph, [("bread", 1.0)], k=2, graph_weight=0.5)
([('lemon', 1.0), ('bread', 0.0005)], 'similar')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from online_models.recommender import DISCOVER_DEPTH, Profile, discover

GRAPH_WEIGHT = 0.1  # chosen from the sweep in benchmarks/graph.py (meta: hr_at_10_by_graph_weight)
MIN_SHOPPERS = 3  # graph candidates: co-purchases by at least this many shoppers, by lift


def _scaled(weights: Mapping[str, float]) -> dict[str, float]:
    top = max(weights.values(), default=0.0)
    return {k: v / top for k, v in weights.items()} if top > 0 else {}


def merge_neighbours(
    streaming: Mapping[str, Mapping[str, float]],
    graph: Mapping[str, Sequence[tuple[str, float]]],
    graph_weight: float = GRAPH_WEIGHT,
) -> dict[str, dict[str, float]]:
    """Per item: the streaming neighbours and the graph's bought-together list, each scaled
    to its strongest entry, the graph's multiplied by ``graph_weight``."""
    merged: dict[str, dict[str, float]] = {}
    for item in set(streaming) | set(graph):
        out = _scaled(streaming.get(item, {}))
        for other, w in _scaled(dict(graph.get(item, ()))).items():
            if other != item:
                out[other] = out.get(other, 0.0) + graph_weight * w
        merged[item] = out
    return merged


def recommend_with_graph(
    profile: Profile,
    category_popular: Mapping[str, Sequence[tuple[str, float]]],
    streaming: Mapping[str, Mapping[str, float]],
    graph: Mapping[str, Sequence[tuple[str, float]]],
    popular: Sequence[tuple[str, float]],
    k: int = 10,
    graph_weight: float = GRAPH_WEIGHT,
) -> tuple[list[tuple[str, float]], str]:
    """Top-``k`` for a shopper from both candidate sources (popularity as the fallback)."""
    recent = profile.recent[:DISCOVER_DEPTH]
    wanted = {item: streaming[item] for item in recent if item in streaming}
    graph_part = {item: graph[item] for item in recent if item in graph}
    near = merge_neighbours(wanted, graph_part, graph_weight)
    return discover(profile, category_popular, near, popular, k)
