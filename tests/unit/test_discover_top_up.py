"""The API's top-up of a short list from the popular items (``api.recommendations.pool``):
discover and the mixed list are topped up with popular items the shopper has not touched
(the stored shopper's ``seen``), never with ones they have; buy again is not topped up."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from api.recommendations import ListedItem, Shopper, pool, without_ranker
from schemas.serving import RecommendedItem

POPULAR = [
    ListedItem(sku, float(10 - n), "popular")
    for n, sku in enumerate(["OWN", "OLD", "NEAR", "NEW1", "NEW2", "NEW3"])
]


def _shopper() -> Shopper:
    """Buys OWN again, touched OLD long ago (no longer in buy again, still in ``seen``);
    discover found only NEAR."""
    return Shopper(
        user_id="u1",
        again=[ListedItem("OWN", 1.0, "again")],
        discover=[ListedItem("NEAR", 0.5, "similar")],
        updated_at=datetime(2026, 12, 1, tzinfo=UTC),
        features={},
        depth=4,
        seen=("OLD", "OWN"),
    )


def test_discover_is_topped_up_with_popular_items_the_shopper_has_not_touched() -> None:
    shopper = _shopper()
    assert [i.sku for i in pool(shopper, "discover", POPULAR, 4)] == [
        "NEAR",
        "NEW1",
        "NEW2",
        "NEW3",
    ]
    served = without_ranker(shopper, "discover", POPULAR, 3)
    assert served.items == [  # the held items served as the answer's models, values kept
        RecommendedItem(sku="NEAR", score=0.5, source="similar"),
        RecommendedItem(sku="NEW1", score=7.0, source="popular"),
        RecommendedItem(sku="NEW2", score=6.0, source="popular"),
    ]


def test_a_new_shopper_is_served_the_popular_items_as_the_answers_models() -> None:
    new = dataclasses.replace(_shopper(), again=[], discover=[], updated_at=None)
    served = without_ranker(new, "mixed", POPULAR, 2)
    assert served.source == "popularity"
    assert served.items == [
        RecommendedItem(sku="OWN", score=10.0, source="popular"),
        RecommendedItem(sku="OLD", score=9.0, source="popular"),
    ]
    assert without_ranker(new, "again", POPULAR, 2).items == []


def test_the_mixed_list_is_topped_up_the_same_way_and_buy_again_not_at_all() -> None:
    shopper = _shopper()
    assert [i.sku for i in pool(shopper, "mixed", POPULAR, 4)] == ["OWN", "NEAR", "NEW1", "NEW2"]
    assert [i.sku for i in pool(shopper, "again", POPULAR, 4)] == ["OWN"]


def test_a_shopper_who_touched_every_popular_item_gets_a_shorter_list() -> None:
    shopper = dataclasses.replace(_shopper(), seen=tuple(i.sku for i in POPULAR))
    assert [i.sku for i in pool(shopper, "discover", POPULAR, 4)] == ["NEAR"]
