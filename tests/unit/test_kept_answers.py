"""A kept list (``api.recommendations.RecommendationService.cached``) is sent again only
while every cached input it was computed from is still the fresh cached value: the
shopper's read that keeps it, the popularity list, the ranker and each candidate's item."""

from __future__ import annotations

import time
from typing import Any

from api.cache import LastKnown
from api.discover import Popularity
from api.metrics import ApiMetrics
from api.onnx_models import ModelSlot
from api.recommendations import (
    NO_ITEM,
    Answer,
    Item,
    Popular,
    RecommendationService,
    Shopper,
)
from schemas.serving import Recommendations
from schemas.settings import Settings


def _service() -> tuple[RecommendationService, Any]:
    shoppers: LastKnown[Shopper] = LastKnown(60.0)
    popular: LastKnown[Popular] = LastKnown(60.0)
    items: LastKnown[Item] = LastKnown(60.0)
    no_ranker = ModelSlot(None, "ranker")  # type: ignore[arg-type]  # never refreshed here
    service = RecommendationService(
        None,  # type: ignore[arg-type]  # cached() reads no store
        (shoppers, popular, items),
        Settings(environment="test").keys,
        None,  # type: ignore[arg-type]
        no_ranker,
        ApiMetrics(),
        None,  # type: ignore[arg-type]
    )
    return service, (shoppers, popular, items)


def test_a_kept_list_is_sent_again_only_while_each_item_it_used_is_the_cached_one() -> None:
    service, (shoppers, popular, items) = _service()
    now = time.monotonic()
    top = Popular(Popularity.of([("tea", 2.0)]), [])
    tea, jam = Item((1.0,), "drinks"), Item((2.0,), "spreads")
    served = Recommendations(user_id="u1", list_name="mixed", items=[], source="ranker")
    kept = Answer(served, b"{}", top, ("tea", "jam"), (tea, jam), None)
    shopper = Shopper("u1", [], [], None, {}, answers={"k=2": kept})
    shoppers.put("u1", shopper, now)
    popular.put("top", top, now)
    items.put("tea", tea, now)
    items.put("jam", jam, now)
    assert service.cached("u1", "k=2") is kept
    assert service.cached("u1", "k=3") is None  # another query string
    items.put("jam", NO_ITEM, now)  # jam read again: another object
    assert service.cached("u1", "k=2") is None
    items.put("jam", jam, now)
    popular.put("top", Popular(top.counts, []), now)  # the popularity list read again
    assert service.cached("u1", "k=2") is None
