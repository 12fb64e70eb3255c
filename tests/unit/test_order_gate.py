"""The ranker's order gate (``batch.ranker.order_gate``) on holdouts whose every list is
known: each list shows 12 candidates in their own order with one taken item at a known
place, and the ranker's scores move that item to another place."""

from __future__ import annotations

import numpy as np
import pytest

from batch.ranker import GATE_MARGIN, order_gate
from batch.ranker_data import RankingSet
from online_models.ranking import RANKER_FEATURES

SHOWN = 12  # candidates a list; places 10 and 11 are out of the top 10


def _gate_case(moves: list[tuple[int, int]]) -> tuple[RankingSet, np.ndarray]:
    """A holdout with one list per ``(own place, ranker's place)`` of its taken item, and the
    ranker's scores: the own order with the taken item moved to the ranker's place."""
    rank = RANKER_FEATURES.index("candidate_rank")
    features = np.zeros((len(moves) * SHOWN, len(RANKER_FEATURES)), np.float32)
    features[:, rank] = np.tile(np.arange(SHOWN), len(moves))
    skus, labels, positives, scores = [], [], [], []
    for query, (own, ranker) in enumerate(moves):
        shown = [f"q{query}-{i}" for i in range(SHOWN)]
        taken = shown[own]
        reordered = [sku for sku in shown if sku != taken]
        reordered.insert(ranker, taken)
        skus.extend(shown)
        labels.extend(int(sku == taken) for sku in shown)
        positives.append({taken})
        scores.extend(-float(reordered.index(sku)) for sku in shown)
    groups = np.repeat(np.arange(len(moves)), SHOWN)
    data = RankingSet(features, np.array(labels), groups, skus, positives, [])
    return data, np.array(scores)


def test_a_ranker_equal_on_average_but_noisy_on_few_lists_is_refused() -> None:
    """Half the lists it lifts a missed item to the top, half it drops a top item out of the
    top 10: both mean differences are 0 (the old rule on the means passed it), but six lists
    bound nothing."""
    data, scores = _gate_case([(10, 0), (0, 11)] * 3)
    gate = order_gate(data, scores)
    assert gate.metrics["gate_hr_at_10_difference"] == 0.0
    assert gate.metrics["gate_ndcg_at_10_difference"] == pytest.approx(0.0)
    assert not gate.passed
    assert gate.metrics["gate_hr_at_10_lower_bound"] < -GATE_MARGIN
    assert gate.metrics["gate_lists"] == 6.0
    assert gate.reason.startswith("refused:")
    assert "on 6 holdout lists; 90% lower bounds of the mean differences -" in gate.reason


def test_a_ranker_a_little_better_on_few_lists_is_refused_and_on_many_passes() -> None:
    """The same small mean gain (the taken item lifted from the 4th place to the top on 5
    lists of 9, dropped from the top to the 4th on the other 4) is noise on 18 lists (the old
    rule on the means passed it) and a gain on 900."""
    pattern = [(3, 0)] * 5 + [(0, 3)] * 4
    few = order_gate(*_gate_case(pattern * 2))
    many = order_gate(*_gate_case(pattern * 100))
    for gate in (few, many):
        assert gate.metrics["gate_hr_at_10_difference"] == 0.0
        assert gate.metrics["gate_ndcg_at_10_difference"] == pytest.approx((1 - 1 / np.log2(5)) / 9)
    assert not few.passed
    assert few.metrics["gate_ndcg_at_10_lower_bound"] < -GATE_MARGIN
    assert many.passed, many.reason
    assert many.metrics["gate_ndcg_at_10_lower_bound"] > 0.0
    # No list's hit changed: only the pseudo-lists' spread bounds the HR@10 difference.
    assert -GATE_MARGIN < many.metrics["gate_hr_at_10_lower_bound"] < 0.0


def test_a_ranker_clearly_better_on_many_lists_passes() -> None:
    """It finds the taken item the own order misses on 60 lists of 200 and loses one the own
    order finds on 10: the bounds of both differences are above zero."""
    data, scores = _gate_case([(10, 0)] * 60 + [(0, 11)] * 10 + [(2, 2)] * 130)
    gate = order_gate(data, scores)
    assert gate.passed, gate.reason
    assert gate.metrics["gate_hr_at_10_lower_bound"] > 0.0
    assert gate.metrics["gate_ndcg_at_10_lower_bound"] > 0.0
    assert gate.reason.startswith("passed:")


def test_a_ranker_worse_on_many_lists_is_refused() -> None:
    """Dropping the taken item from the top to the 3rd place on every list of 100 is a sure
    loss of NDCG@10 (HR@10 unchanged)."""
    gate = order_gate(*_gate_case([(0, 2)] * 100))
    assert not gate.passed
    assert gate.metrics["gate_hr_at_10_difference"] == 0.0
    assert gate.metrics["gate_ndcg_at_10_difference"] == pytest.approx(0.5 - 1.0)
    assert gate.metrics["gate_ndcg_at_10_lower_bound"] < 0.5 - 1.0


def test_lists_that_all_tie_pass_only_when_there_are_enough_of_them() -> None:
    """A ranker that changes no list's HR@10 or NDCG@10 (it keeps the taken item where the
    own order has it) is no worse on the lists seen; how sure that is depends on how many:
    two tying lists once passed. Now a few hundred are needed."""
    for lists, passes in ((2, False), (40, False), (180, False), (200, True)):
        gate = order_gate(*_gate_case([(2, 2)] * lists))
        assert gate.metrics["gate_hr_at_10_difference"] == 0.0
        assert gate.metrics["gate_ndcg_at_10_difference"] == 0.0
        assert gate.passed is passes, (lists, gate.reason)
