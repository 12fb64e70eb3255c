"""Item–item similarity learned online from every shopper's history (pure).

When a shopper interacts with an item, it is paired with the previous :data:`PAIR_DEPTH`
distinct items of their history — not only the latest one — each pair weighted by the
interaction (a cart counts more than a view) and by how far back the older item lies
(:data:`PAIR_DECAY` per step). The pair counts forward (older → newer: what people go on to)
fully and backward (newer → older) by :data:`BACKWARD`.

Each item keeps the decayed co-occurrence weights of its strongest :data:`NEIGHBOURS`
neighbours (:class:`online_models.recommender.DecayedWeights`, pruned) and the decayed total
of all its pair weights; the published similarity is the neighbour's share of that total,
divided by the neighbour's own popularity to the power :data:`POPULARITY_DAMPING` at
recommendation time (so that best sellers do not crowd every list).

>>> [(a, b, round(w, 2)) for a, b, w in pairs(["milk", "tea", "cake"], "lemon", 2.0, depth=3)]
[('milk', 'lemon', 2.0), ('lemon', 'milk', 1.0), ('tea', 'lemon', 1.4), ('lemon', 'tea', 0.7), \
('cake', 'lemon', 0.98), ('lemon', 'cake', 0.49)]
>>> near = CoOccurrence()
>>> for other, w in [("b", 1.0), ("c", 3.0)]:
...     _ = near.add(other, w)
>>> [(sku, round(w, 2)) for sku, w in near.similar()]
[('c', 0.75), ('b', 0.25)]
>>> damped({"c": 0.75, "b": 0.25}, {"c": 100.0, "b": 1.0}, 0.5)
{'c': 0.075, 'b': 0.25}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from online_models.recommender import DECAY, NEIGHBOURS, DecayedWeights

PAIR_DEPTH = 2  # previous distinct history items an interaction pairs with (cost: docs)
PAIR_DECAY = 0.7  # weight of the pair with the d-th previous item: PAIR_DECAY**d
BACKWARD = 0.5  # weight of the newer → older direction against older → newer
POPULARITY_DAMPING = 0.25  # similarity ÷ popularity**damping (docs/recommendations.md)
PUBLISH_EVERY = 25  # publish an item's neighbours every n updates (after the first few)

Pair = tuple[str, str, float]  # (item, neighbour, weight)
Counts = list[tuple[str, float]]  # (neighbour, weight) pairs of one item


def pairs(history: list[str], sku: str, weight: float, depth: int = PAIR_DEPTH) -> list[Pair]:
    """The pairs one interaction with ``sku`` forms with the shopper's ``history`` (newest
    first, before the interaction): both directions, the backward one weighted less."""
    out: list[Pair] = []
    d = 0
    for old in history:
        if d >= depth:
            break
        if old == sku:
            continue
        w = weight * PAIR_DECAY**d
        out.append((old, sku, w))
        out.append((sku, old, BACKWARD * w))
        d += 1
    return out


def by_item(formed: list[Pair]) -> dict[str, Counts]:
    """The pairs grouped by their first item: one message per item for the keyed state.

    >>> by_item([("a", "b", 1.0), ("b", "a", 0.5), ("c", "b", 0.7), ("b", "c", 0.35)])
    {'a': [('b', 1.0)], 'b': [('a', 0.5), ('c', 0.35)], 'c': [('b', 0.7)]}
    """
    out: dict[str, Counts] = {}
    for item, other, w in formed:
        out.setdefault(item, []).append((other, w))
    return out


@dataclass
class CoOccurrence:
    """One item's decayed co-occurrence with its strongest neighbours (bounded)."""

    co: DecayedWeights = field(default_factory=DecayedWeights)
    total: float = 0.0  # decayed sum of every pair weight, pruned neighbours included
    updates: int = 0

    def add(self, neighbour: str, weight: float) -> bool:
        """Count one pair; True when the neighbour list is due to be published."""
        self.co.add(neighbour, weight)
        self.total = self.total * DECAY + weight
        self.updates += 1
        return self.due_within(self.updates - 1, self.updates)

    @staticmethod
    def due_within(before: int, after: int) -> bool:
        """Whether the list falls due at some count of updates in ``(before, after]``: each
        of the first five updates, then every :data:`PUBLISH_EVERY`-th.

        >>> due = CoOccurrence.due_within
        >>> due(5, 24), due(5, 25), due(4, 4)
        (False, True, False)
        """
        return after > before and (before < 5 or after // PUBLISH_EVERY > before // PUBLISH_EVERY)

    def similar(self, n: int = NEIGHBOURS) -> list[tuple[str, float]]:
        """The strongest neighbours with their share of all this item's pair weight."""
        total = self.total or 1.0
        return [(k, round(v / total, 6)) for k, v in self.co.top(n)]


def damped(
    similar: Mapping[str, float],
    popularity: Mapping[str, float],
    damping: float,
    floor: float = 1.0,
) -> dict[str, float]:
    """``similar`` with each neighbour divided by its popularity (≥ 1) to ``damping``; a
    neighbour missing from ``popularity`` counts ``floor`` (the popularity lists keep only
    the most popular products: one past their end is at most as popular as the last kept).

    >>> damped({"rare": 0.5}, {"hit": 16.0}, 0.5, floor=4.0)
    {'rare': 0.25}
    """
    if damping == 0:
        return dict(similar)
    return {
        k: round(v / max(1.0, popularity.get(k, floor)) ** damping, 6) for k, v in similar.items()
    }
