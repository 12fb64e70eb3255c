"""A product's popularity: its interactions decayed in event time, kept as one log score.

An interaction at event time ``t`` weighs ``2 ** (-(now - t) / HALF_LIFE_S)`` at ``now``: a
product's decayed count halves every :data:`HALF_LIFE_S` seconds without interactions. Kept
as ``s = ln(decayed count at now) + now · RATE`` (``RATE = ln 2 / HALF_LIFE_S``), the score
does not depend on ``now``: each interaction adds ``s = logaddexp(s, t · RATE)``
(:func:`add`), and two products' scores compare as their decayed counts at any common
moment. So a product that stops selling falls below one that sells now, and a list sorted by
the scores (the flows' popularity lists in Redis) stays in order as time passes without a
rewrite of every product's score.

A score is not a count. What needs one (the damping of neighbours by their popularity,
buy again's order, the ranker's ``item_popularity``, the search boost) takes the count
relative to a reference score (:func:`counts`): the least popular product a list keeps,
which then counts 1, as the capped counts of before put it near 1. Those readers use ratios
of counts, which any common reference keeps.

>>> old = add(add(NONE, 0.0), 0.0)  # two interactions at t = 0
>>> new = add(NONE, 3 * HALF_LIFE_S)  # one, three half-lives later
>>> new > old, round(math.exp(old - new), 3)  # at any moment after: 2 / 2**3 against 1
(True, 0.25)
>>> {sku: round(n, 6) for sku, n in counts({"old": old, "new": new}, old).items()}
{'old': 1.0, 'new': 4.0}
"""

from __future__ import annotations

import math
from collections.abc import Mapping

HALF_LIFE_S = 90 * 86_400.0  # chosen on both data sets: docs/recommendations.md
RATE = math.log(2.0) / HALF_LIFE_S
NONE = -math.inf  # the score of a product with no interaction


def add(score: float, t: float, rate: float = RATE) -> float:
    """``score`` after one more interaction at event time ``t`` (seconds):
    ``logaddexp(score, t · rate)``."""
    x = t * rate
    hi, lo = (score, x) if score >= x else (x, score)
    return hi + math.log1p(math.exp(lo - hi))


def counts(scores: Mapping[str, float], reference: float) -> dict[str, float]:
    """Each product's decayed count relative to the product whose score is ``reference``."""
    return {sku: math.exp(s - reference) for sku, s in scores.items()}
