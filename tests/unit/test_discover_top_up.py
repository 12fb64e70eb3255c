"""The API's top-up of a short list from the popular items (``api.recommendations.pool``):
discover and the mixed list are topped up with popular items the shopper has not touched
(the stored shopper's ``seen``), never with ones they have; buy again is not topped up."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from api.recommendations import Shopper, pool, without_ranker
from schemas.serving import RecommendedItem

POPULAR = [
    RecommendedItem(sku=sku, score=float(10 - n), source="popular")
    for n, sku in enumerate(["OWN", "OLD", "NEAR", "NEW1", "NEW2", "NEW3"])
]


def _shopper() -> Shopper:
    """Buys OWN again, touched OLD long ago (no longer in buy again, still in ``seen``);
    discover found only NEAR."""
    return Shopper(
        user_id="u1",
        again=[RecommendedItem(sku="OWN", score=1.0, source="again")],
        discover=[RecommendedItem(sku="NEAR", score=0.5, source="similar")],
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
    assert [i.sku for i in served.items] == ["NEAR", "NEW1", "NEW2"]


def test_the_mixed_list_is_topped_up_the_same_way_and_buy_again_not_at_all() -> None:
    shopper = _shopper()
    assert [i.sku for i in pool(shopper, "mixed", POPULAR, 4)] == ["OWN", "NEAR", "NEW1", "NEW2"]
    assert [i.sku for i in pool(shopper, "again", POPULAR, 4)] == ["OWN"]


def test_a_shopper_who_touched_every_popular_item_gets_a_shorter_list() -> None:
    shopper = dataclasses.replace(_shopper(), seen=tuple(i.sku for i in POPULAR))
    assert [i.sku for i in pool(shopper, "discover", POPULAR, 4)] == ["NEAR"]
