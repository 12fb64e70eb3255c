"""A product's popularity decays in event time (online_models.popularity), as the flow keeps
it and as the API counts it."""

from __future__ import annotations

import math

import pytest

from api.discover import Popularity
from flows.records import SkuSignal
from flows.steps import SkuState, new_sku_state
from online_models import popularity
from schemas.catalogue import CatalogueItem

CATALOGUE = {
    sku: CatalogueItem(sku=sku, category="tea", list_price=10.0, unit_cost=5.0)
    for sku in ("OLD", "NOW")
}
DAY = 86_400.0


def _viewed(sku: str, times: list[float]) -> SkuState:
    state = new_sku_state(sku, CATALOGUE)
    for t in times:
        state.apply(SkuSignal("view", t))
    return state


def test_a_product_that_stopped_selling_ranks_below_one_that_sells_now_at_the_same_count() -> None:
    stopped = _viewed("OLD", [i * 60.0 for i in range(20)])
    selling = _viewed("NOW", [30 * DAY + i * 60.0 for i in range(20)])
    assert stopped.interactions == selling.interactions == 20
    assert selling.popularity > stopped.popularity
    # by as much as 30 days of decay: the old product's count at any later moment is this
    # share of the new one's
    share = math.exp(stopped.popularity - selling.popularity)
    assert share == pytest.approx(2.0 ** (-30 * DAY / popularity.HALF_LIFE_S), rel=1e-3)


def test_the_order_of_two_products_follows_their_decayed_counts_whenever_they_are_compared() -> (
    None
):
    h = popularity.HALF_LIFE_S
    three_then = _viewed("OLD", [0.0, 0.0, 0.0])  # counts 3 at t = 0
    one_later = _viewed("NOW", [2 * h])  # counts 1 at two half-lives: the first then counts 3/4
    assert one_later.popularity > three_then.popularity
    one_sooner = _viewed("NOW", [h])  # at one half-life the first counts 3/2: still ahead
    assert three_then.popularity > one_sooner.popularity
    assert math.exp(three_then.popularity - one_sooner.popularity) == pytest.approx(1.5)


def test_products_are_published_with_their_score() -> None:
    state = new_sku_state("NOW", CATALOGUE)
    first = state.apply(SkuSignal("view", 5 * DAY))
    assert first.popularity == ("tea", round(5 * DAY * popularity.RATE, 4))


def test_the_api_counts_the_list_relative_to_the_least_popular_it_keeps() -> None:
    scored = [("A", 100.0 + math.log(8.0)), ("B", 100.0 + math.log(2.0)), ("C", 100.0)]
    read = Popularity.of(scored)
    assert [s for s, _ in read.ranked] == ["A", "B", "C"]
    assert [round(c, 9) for _, c in read.ranked] == [8.0, 2.0, 1.0]
    assert read.scores["B"] == pytest.approx(2.0)
    assert read.reference == 100.0
    assert Popularity.of([]).ranked == []
