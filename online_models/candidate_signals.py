"""What the discover sources say about each candidate: the ranker's view of the blend (pure).

The discover list (:mod:`online_models.recommender`) sums its sources into one score: the
neighbours, the category best sellers and, once the batch job has published item factors,
the factor source (``online_models.factors.factor_source``). The ranker gets them apart, per
candidate, so that it can weigh them by what shoppers took:

- ``similar_part`` / ``category_part`` / ``factor_part``: each source's contribution to the
  blended score, scaled as the served blend scales it (``online_models.recommender.scales``
  over two sources, or three when there are factors);
- ``similar_rank`` / ``category_rank`` / ``factor_rank``: 1 / (1 + the candidate's rank
  within each source), 0 when the source does not hold it;
- ``history_links``: how many of the shopper's recent items (the
  :data:`~online_models.recommender.DISCOVER_DEPTH` whose neighbours are candidates) list it
  as a neighbour; ``latest_link``: 1 / (1 + position) of the most recent of them;
  ``strongest_link``: its largest neighbour weight among them;
- ``item_popularity``: ln(1 + its count in the popularity list).

The API computes them from what it read to build the list (``api/discover.py``), the batch
training from the states it rebuilds (``batch/ranker_data.py``), and the recs benchmark
through the API's reads: one function for all.

>>> from online_models.recommender import Profile
>>> profile = Profile([("tea", 1.0)], [("drinks", 1.0)], ["tea", "milk"])
>>> near = {"tea": {"lemon": 0.6, "cake": 0.4}, "milk": {"cake": 0.5}}
>>> found = candidate_signals(profile, {"drinks": [("coffee", 3.0), ("cake", 1.0)]}, near,
...                           {"cake": 6.0}, ["cake", "coffee", "bread"])
>>> dict(zip(SIGNAL_FEATURES, found["cake"]))["history_links"]
2.0
>>> [round(v, 3) for v in found["coffee"][:6]], found["bread"] == NO_SIGNALS
([0.0, 0.281, 0.0, 0.0, 1.0, 0.0], True)
>>> with_factors = candidate_signals(profile, {"drinks": [("coffee", 3.0)]}, near, {},
...                                  ["coffee", "bread"], {"bread": 1.0, "coffee": 0.0})
>>> [round(v, 3) for v in with_factors["bread"][:6]]
[0.0, 0.0, 0.273, 0.0, 0.0, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from online_models.recommender import (
    DISCOVER_DEPTH,
    Profile,
    scales,
    source_weights,
    sources,
)

SIGNAL_FEATURES: tuple[str, ...] = (
    "similar_part",
    "category_part",
    "factor_part",
    "similar_rank",
    "category_rank",
    "factor_rank",
    "history_links",
    "latest_link",
    "strongest_link",
    "item_popularity",
)
"""The per-candidate columns :func:`candidate_signals` gives, in the ranker's order."""

NO_SIGNALS: tuple[float, ...] = (0.0,) * len(SIGNAL_FEATURES)

Signals = tuple[float, ...]


def _ranks(scores: Mapping[str, float]) -> dict[str, int]:
    """Each item's rank, best score first, ties by item (two stable C-level sorts: by item,
    then by score descending)."""
    ordered = sorted(sorted(scores), key=scores.__getitem__, reverse=True)
    return dict(zip(ordered, range(len(ordered)), strict=True))


def _reciprocal(rank: int | None) -> float:
    return 0.0 if rank is None else 1.0 / (1 + rank)


def candidate_signals(
    profile: Profile,
    category_popular: Mapping[str, Sequence[tuple[str, float]]],
    neighbours: Mapping[str, Mapping[str, float]],
    popularity: Mapping[str, float],
    skus: Iterable[str],
    factored: Mapping[str, float] | None = None,
) -> dict[str, Signals]:
    """:data:`SIGNAL_FEATURES` of each of ``skus`` for the shopper, from the inputs the
    discover list is built from (``neighbours`` as the list ranks them: damped when the list
    is; ``factored`` the shopper's factor source, none without factors); a sku no source
    holds and the popularity list lacks gets :data:`NO_SIGNALS`."""
    similar, by_category = sources(profile, category_popular, neighbours)
    return signals_of(profile, similar, by_category, neighbours, popularity, skus, factored)


def signals_of(
    profile: Profile,
    similar: Mapping[str, float],
    by_category: Mapping[str, float],
    neighbours: Mapping[str, Mapping[str, float]],
    popularity: Mapping[str, float],
    skus: Iterable[str],
    factored: Mapping[str, float] | None = None,
) -> dict[str, Signals]:
    """:func:`candidate_signals` from the two sources as
    ``online_models.recommender.sources`` gives them and the factor source (when the list
    was built from them)."""
    factored = factored or {}
    parts = scales(source_weights(similar, by_category, factored))
    part_similar, part_category = parts[0], parts[1]
    part_factor = parts[2] if factored else 0.0
    rank_similar, rank_category = _ranks(similar), _ranks(by_category)
    rank_factor = _ranks(factored)
    counts: dict[str, int] = {}
    latest: dict[str, int] = {}
    strongest: dict[str, float] = {}
    for i, item in enumerate(profile.recent[:DISCOVER_DEPTH]):
        for other, w in neighbours.get(item, {}).items():
            if other in counts:
                counts[other] += 1
                if w > strongest[other]:
                    strongest[other] = w
            else:
                counts[other], latest[other], strongest[other] = 1, i, w
    out: dict[str, Signals] = {}
    for sku in skus:
        count = counts.get(sku, 0)
        out[sku] = (
            part_similar * similar.get(sku, 0.0),
            part_category * by_category.get(sku, 0.0),
            part_factor * factored.get(sku, 0.0),
            _reciprocal(rank_similar.get(sku)),
            _reciprocal(rank_category.get(sku)),
            _reciprocal(rank_factor.get(sku)),
            float(count),
            1.0 / (1 + latest[sku]) if count else 0.0,
            strongest[sku] if count else 0.0,
            math.log1p(max(0.0, popularity.get(sku, 0.0))),
        )
    return out
