"""The quality benchmark's loop folds its shoppers into item factors as a shop's scheduler
publishes them (benchmarks.quality.ScheduledFactors): none before the first pipeline run,
then refitted on each pipeline run on what was sent before it, weighted as the batch job
weighs silver."""

from __future__ import annotations

import random
from typing import Any

from benchmarks.quality import ScheduledFactors, Size, run_tillflow, shop_config
from online_models.factors import WEIGHTS, Interactions
from schemas.topics import by_name
from simulator.shop import DAY, Emitted

HOUR = 3_600.0


def _activity(user: str, sku: str | None, action: str, t: float) -> Emitted:
    payload: dict[str, Any] = {"user_id": user, "session_id": "s", "action": action, "sku": sku}
    return Emitted(by_name("user-activity"), user, payload, t)


def _order(user: str, skus: list[str], t: float) -> Emitted:
    lines = [{"sku": s, "quantity": 2, "unit_price": 1.0} for s in skus]
    return Emitted(by_name("orders"), user, {"user_id": user, "lines": lines}, t)


def test_interactions_weigh_as_the_batch_job_weighs_silver() -> None:
    factors = ScheduledFactors(first=0.0, every=HOUR)
    for e in [
        _activity("ann", "tea", "view", 1.0),
        _activity("ann", "tea", "add_to_cart", 2.0),
        _activity("ann", "tea", "remove_from_cart", 3.0),  # not an interaction the fit reads
        _activity("ann", None, "search", 4.0),
        _activity("ann", "jam", "wishlist", 5.0),
        _order("ann", ["tea", "milk"], 6.0),  # one purchase a line, whatever its quantity
    ]:
        factors.add(e)
    assert _weights(factors.interactions()) == {
        ("ann", "tea"): WEIGHTS["view"] + WEIGHTS["add_to_cart"] + WEIGHTS["purchase"],
        ("ann", "jam"): WEIGHTS["wishlist"],
        ("ann", "milk"): WEIGHTS["purchase"],
    }


def test_the_fit_reads_the_pairs_in_the_batch_s_order() -> None:
    """The batch's query orders the pairs by shopper, then product, and codes them in order
    of first appearance; the seeded fit depends on that order, so the loop must give the same
    matrix however its events arrived."""
    rng = random.Random(3)
    users = [f"u{rng.randrange(10**6)}" for _ in range(60)]
    skus = [f"SKU-{rng.randrange(10**4)}" for _ in range(40)]
    factors = ScheduledFactors(first=0.0, every=HOUR)
    totals: dict[tuple[str, str], float] = {}
    for i in range(3_000):
        user, sku = rng.choice(users), rng.choice(skus)
        action = rng.choice(["view", "add_to_cart", "wishlist"])
        factors.add(_activity(user, sku, action, float(i)))
        totals[user, sku] = totals.get((user, sku), 0.0) + WEIGHTS[action]
    expected = Interactions.of([(u, s, w) for (u, s), w in sorted(totals.items())])
    got = factors.interactions()
    assert got.shoppers == expected.shoppers
    assert got.skus == expected.skus
    assert got.skus != sorted(got.skus)  # first appearance in the sorted pairs, not by name
    assert (got.matrix != expected.matrix).nnz == 0
    assert got.matrix.indptr.tolist() == expected.matrix.indptr.tolist()
    assert got.matrix.indices.tolist() == expected.matrix.indices.tolist()


def _weights(pairs: Interactions) -> dict[tuple[str, str], float]:
    coo = pairs.matrix.tocoo()
    return {
        (pairs.shoppers[r], pairs.skus[c]): float(w)
        for r, c, w in zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True)
    }


def test_factors_are_published_on_schedule_from_what_came_before_each_run() -> None:
    factors = ScheduledFactors(first=10 * HOUR, every=HOUR)
    factors.add(_order("ann", ["tea", "milk"], 0.0))
    factors.add(_order("bob", ["tea", "jam"], HOUR))
    # the first run after `first` is the first to publish: none before it
    assert factors.at(10.5 * HOUR) is None
    first = factors.at(11 * HOUR)
    assert first is not None
    assert set(first.skus) == {"tea", "milk", "jam"}
    factors.add(_order("cid", ["honey"], 11.2 * HOUR))
    assert factors.at(11.9 * HOUR) is first  # published only by the next run
    # runs at 12 h and 13 h fell due with only honey's order between them: one fit
    latest = factors.at(13.5 * HOUR)
    assert latest is not None
    assert latest is not first
    assert "honey" in latest.skus
    assert factors.fits == 2
    assert factors.at(13.9 * HOUR) is latest


def test_the_loop_refits_the_factors_every_pipeline_run_from_the_shop_s_first_hours() -> None:
    size = Size(
        days=3.5, warmup_days=3, min_units=20, products=30, shoppers=300, sessions_per_day=2_000
    )
    result = run_tillflow(shop_config("both", size, 5), size)
    # the factors need no days of history (batch.training fits them before the models that
    # wait for them): runs with new events before them from the first hours, not from day 3
    assert 3 * DAY // HOUR < result["factor_fits"] < 3.5 * DAY // HOUR
    assert result["recommendation_trials"] > 100
