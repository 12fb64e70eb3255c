"""The co-occurrence step builds an item's neighbour list once per batch: only the list it
publishes, though several of the batch's interactions made the list due."""

from __future__ import annotations

import pytest

from flows.steps import ItemNeighbours
from online_models.similarity import CoOccurrence


def test_a_batch_of_due_interactions_builds_one_list(monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    similar = CoOccurrence.similar

    def counted(self: CoOccurrence, n: int = 50) -> list[tuple[str, float]]:
        built.append(self.updates)
        return similar(self, n)

    single = ItemNeighbours()
    lists = [single.add([(f"n{i}", 1.0)]) for i in range(30)]
    monkeypatch.setattr(CoOccurrence, "similar", counted)
    batched = ItemNeighbours()
    # the first five interactions are each due, the 25th again, then none up to the 30th
    published = batched.add_each([[(f"n{i}", 1.0)] for i in range(30)])
    assert built == [25]
    assert published == lists[24]
    assert batched == single
    assert batched.add_each([[("x", 1.0)], [("y", 2.0)]]) is None
    assert built == [25]
