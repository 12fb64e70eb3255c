"""Item-to-item recommendations learned online from co-interactions, with a popularity fallback.

When a shopper interacts with item ``b`` after items ``a1…an``, each pair (a_i, b) and
(b, a_i) gains weight; weights decay so tastes can move. A shopper's candidates are the
neighbours of their recent items, scored by neighbour weight and recency; shoppers with no
history get the most popular items.

>>> co = CoOccurrence()
>>> for item, w in [("milk", 1.0), ("bread", 2.0), ("milk", 1.0)]:
...     co.add(item, w)
>>> [(item, round(w, 2)) for item, w in co.top(2)]
[('milk', 2.0), ('bread', 2.0)]
>>> recommend(["tea"], {"tea": {"milk": 3.0, "cake": 1.0}}, [("bread", 9.0)], k=3)
([('milk', 3.0), ('cake', 1.0), ('bread', 0.09)], 'co-occurrence')
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

NEIGHBOURS = 30
DECAY = 0.999  # per update of one item's neighbour list
RECENCY = 0.7  # weight of the i-th most recent item is RECENCY**i
FALLBACK_WEIGHT = 0.01  # popular items rank after every co-occurrence candidate


@dataclass
class CoOccurrence:
    """The decayed co-interaction weights of one item's neighbours."""

    weights: dict[str, float] = field(default_factory=dict)
    scale: float = 1.0  # lazy decay: stored weights are divided by scale

    def add(self, neighbour: str, weight: float) -> None:
        self.scale /= DECAY
        if self.scale > 1e6:  # renormalise now and then
            self.weights = {k: v / self.scale for k, v in self.weights.items()}
            self.scale = 1.0
        self.weights[neighbour] = self.weights.get(neighbour, 0.0) + weight * self.scale
        if len(self.weights) > 4 * NEIGHBOURS:
            keep = sorted(self.weights.items(), key=lambda kv: -kv[1])[: 2 * NEIGHBOURS]
            self.weights = dict(keep)

    def top(self, n: int = NEIGHBOURS) -> list[tuple[str, float]]:
        best = heapq.nlargest(n, self.weights.items(), key=lambda kv: kv[1])
        scale = self.scale
        return [(k, v / scale) for k, v in best]


def recommend(
    recent: Sequence[str],
    neighbours: Mapping[str, Mapping[str, float]],
    popular: Sequence[tuple[str, float]],
    k: int = 10,
) -> tuple[list[tuple[str, float]], str]:
    """Top-``k`` (sku, score) for a shopper and where they came from.

    ``recent`` is the shopper's latest items, newest first; ``neighbours`` maps an item to its
    neighbours' weights; ``popular`` is the fallback list, most popular first.
    """
    scores: dict[str, float] = {}
    for i, item in enumerate(recent):
        w = RECENCY**i
        for other, weight in neighbours.get(item, {}).items():
            scores[other] = scores.get(other, 0.0) + w * weight
    source = "co-occurrence" if scores else "popularity"
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    if len(ranked) < k:
        have = {s for s, _ in ranked}
        for sku, weight in popular:
            if sku not in have:
                ranked.append((sku, round(FALLBACK_WEIGHT * weight, 6)))
                have.add(sku)
            if len(ranked) >= k:
                break
    return [(s, round(v, 6)) for s, v in ranked], source
