"""The learners and the price optimiser, without services."""

from __future__ import annotations

import math
import pickle
import random
import re

import numpy as np
import pytest

from online_models.drift import ErrorDrift
from online_models.pooling import CategoryPool
from online_models.pricer import Market, ProductPricer
from online_models.pricing import (
    MIN_TEST,
    Guardrails,
    PricingInput,
    decide,
    optimal_price,
    price_test_cost,
    price_test_size,
)
from online_models.recommender import (
    HISTORY,
    INTEREST_ITEMS,
    DecayedWeights,
    Profile,
    again,
    best,
    discover,
    likely_again,
    mixed,
    new_interest,
    remember,
)

# current, list, cost, elasticity, competitor, cover -> expected price (None = no change)
DECISIONS = [
    ("elastic: move toward optimum, step-limited", 10.0, 10.0, 6.0, -2.0, None, None, 11.0),
    ("already optimal", 12.0, 10.0, 6.0, -2.0, None, None, None),
    ("inelastic: up to the step limit", 10.0, 10.0, 6.0, -0.8, None, None, 11.0),
    ("very elastic: close to cost", 7.5, 10.0, 6.0, -6.0, None, None, 7.2),
    ("floor beats a competitor below cost", 6.5, 10.0, 6.0, -1.5, 5.0, None, 6.3),
    ("competitor caps the rise", 10.0, 10.0, 6.0, -1.2, 8.5, None, 10.62),
    ("ceiling", 15.5, 10.0, 6.0, -0.5, None, None, 16.0),
    ("short cover raises", 12.0, 10.0, 6.0, -2.0, None, 1.0, 12.6),
    ("overstock lowers", 12.0, 10.0, 6.0, -2.0, None, 90.0, 11.4),
]


@pytest.mark.parametrize(
    ("case", "current", "list_price", "cost", "e", "competitor", "cover", "expected"),
    DECISIONS,
    ids=[d[0] for d in DECISIONS],
)
def test_price_decisions_respect_the_guardrails(
    case: str,
    current: float,
    list_price: float,
    cost: float,
    e: float,
    competitor: float | None,
    cover: float | None,
    expected: float | None,
) -> None:
    decision = decide(PricingInput(current, list_price, cost, e, competitor, cover), Guardrails())
    if expected is None:
        assert decision is None
    else:
        assert decision is not None
        assert decision.price == pytest.approx(expected)
        assert decision.reason


@pytest.mark.parametrize("seed", range(4))
def test_price_tests_stay_inside_the_guardrails(seed: int) -> None:
    """Random products, markets and test legs: every price lies between the floor and the
    ceiling, at most 25 % above the lowest competitor, within a ±10 % step of the current."""
    rng = random.Random(seed)
    rails = Guardrails()
    for _ in range(2_000):
        list_price = rng.uniform(1.0, 50.0)
        cost = list_price * rng.uniform(0.4, 0.75)
        floor, ceiling = cost * (1 + rails.min_margin), list_price * rails.max_markup
        current = rng.uniform(floor, ceiling)
        competitor = rng.choice([None, list_price * rng.uniform(0.7, 1.3)])
        cover = rng.choice([None, 1.0, 20.0, 90.0])
        explore = rng.choice([-1, 1]) * rng.uniform(0.0, 0.05)
        inp = PricingInput(
            current, list_price, cost, rng.uniform(-4.0, -0.3), competitor, cover, explore
        )
        decision = decide(inp, rails)
        price = current if decision is None else decision.price
        assert floor - 0.01 <= price <= ceiling + 0.01
        assert abs(price / current - 1) <= rails.max_change + 0.01 / current
        if competitor is not None and current <= competitor * 1.25:
            assert price <= max(floor, competitor * (1 + rails.max_competitor_gap)) + 0.01


def _legs(current: float, cost: float, e: float, competitor: float) -> tuple[float, float]:
    rails = Guardrails()
    high = decide(PricingInput(current, 10.0, cost, e, competitor, None, 0.05), rails)
    low = decide(PricingInput(current, 10.0, cost, e, competitor, None, -0.05), rails)
    return (
        current if high is None else high.price,
        current if low is None else low.price,
    )


def test_a_product_on_the_competitor_cap_tests_below_it() -> None:
    """The profit optimum (12) just above the competitor cap (11.75): the test's upper leg is
    the cap and its lower leg a full step below, so the product sells at two prices ~log(1.1)
    apart; a test centred on the uncapped optimum would have been capped to 11.75 / 11.41."""
    high, low = _legs(11.2, cost=6.0, e=-2.0, competitor=9.4)
    assert high == pytest.approx(11.75)
    assert math.log(high / low) == pytest.approx(math.log(1.1), abs=0.01)


def test_a_price_test_costs_at_most_its_budget() -> None:
    """Where profit still rises steeply at the cap (an inelastic product held well below its
    optimum), a full test would lose ~6 % of profit: it narrows until it loses ≤ 1 %."""
    rails = Guardrails()
    high, low = _legs(11.0, cost=7.0, e=-1.5, competitor=9.0)
    assert high == pytest.approx(11.25)
    assert 0 < math.log(high / low) < 0.03
    legs = (high, low)
    cost = price_test_cost(11.25, math.log(high / low) / 2, 7.35, 11.25, 7.0, -1.5)
    assert cost <= rails.max_test_cost + 1e-3
    assert price_test_cost(11.25, math.log(1.1) / 2, 7.35, 11.25, 7.0, -1.5) > 0.04
    assert all(7.35 <= p <= 11.25 for p in legs)


def test_optimal_price_maximises_profit() -> None:
    cost, e = 4.0, -1.7
    best = optimal_price(cost, e, ceiling=1e9)
    grid = np.linspace(cost * 1.01, cost * 5, 2_000)
    profits = (grid - cost) * grid**e
    assert best == pytest.approx(grid[int(np.argmax(profits))], rel=0.01)


def test_pricer_limits_updates_per_hour_and_learns() -> None:
    pricer = ProductPricer("SKU-1", list_price=10.0, unit_cost=5.0)
    pool = CategoryPool()
    rng = random.Random(0)
    t = 1_767_571_200.0
    changes = []
    late_prices = []
    for step in range(60_000):
        t += 6.0  # four days: each day's decisions price a draw of their own
        change, _ = pricer.on_view(t, Market(), pool)
        if step >= 45_000:
            late_prices.append(pricer.price)
        if rng.random() < min(1.0, 0.1 * (pricer.price / 10.0) ** -2.0):
            pricer.on_cart(t, pool)
        if change is not None:
            changes.append(change)
    assert changes
    per_hour: dict[int, int] = {}
    for c in changes:
        per_hour[int(c.t // 3600)] = per_hour.get(int(c.t // 3600), 0) + 1
    assert max(per_hour.values()) <= Guardrails().max_updates_per_hour
    mean, _ = pricer.demand.posterior(pool)
    assert mean == pytest.approx(-2.0, abs=0.35)
    assert all("elasticity" in c.reason and "views" in c.reason for c in changes)
    # the optimum for e = -2 and cost 5 is 10: prices settle near it (each day's Thompson
    # draw and the price test keep single prices moving around it)
    assert 8.5 <= float(np.median(late_prices)) <= 12.5


def test_adwin_flags_a_shift_in_the_error() -> None:
    detector = ErrorDrift()
    rng = random.Random(1)
    early = [detector.update(rng.gauss(0.1, 0.05)) for _ in range(2_000)]
    late = [detector.update(rng.gauss(0.8, 0.05)) for _ in range(300)]
    assert not any(early)
    assert any(late)


def error_stream(seed: int) -> list[float]:
    rng = random.Random(seed)
    calm = [rng.gauss(0.1, 0.05) for _ in range(1_500)]
    return calm + [rng.gauss(0.8, 0.05) for _ in range(400)] + calm[:600]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_error_drift_agrees_with_rivers_adwin(seed: int) -> None:
    from river.drift import ADWIN

    ours, river_adwin = ErrorDrift(), ADWIN(delta=ErrorDrift().delta)  # type: ignore[no-untyped-call]
    detections = 0
    for error in error_stream(seed):
        river_adwin.update(abs(error))  # type: ignore[no-untyped-call]
        assert ours.update(error) == river_adwin.drift_detected
        assert ours.mean_error == pytest.approx(river_adwin.estimation)
        detections += river_adwin.drift_detected
    assert ours.detections == detections > 0


def test_error_drift_restores_a_snapshot_holding_rivers_adwin() -> None:
    from river.drift import ADWIN

    stream = error_stream(4)
    old, fresh = ErrorDrift(), ErrorDrift()
    old.detector = ADWIN(delta=old.delta)  # type: ignore[no-untyped-call]
    for error in stream[:1_700]:  # past the shift: a detection is pending a new window
        old.updates += 1
        old.detector.update(abs(error))
        old.detections += old.detector.drift_detected
        fresh.update(error)
    restored = pickle.loads(pickle.dumps(old))
    assert restored.mean_error == pytest.approx(fresh.mean_error)
    assert [restored.update(e) for e in stream[1_700:]] == [fresh.update(e) for e in stream[1_700:]]
    assert (restored.detections, restored.updates) == (fresh.detections, fresh.updates)


def test_decayed_weights_forget_old_items_and_stay_bounded() -> None:
    weights = DecayedWeights(decay=0.9, capacity=5)
    for i in range(100):
        weights.add(f"old-{i % 3}", 1.0)
    for _ in range(30):
        weights.add("new", 1.0)
    assert weights.top(1)[0][0] == "new"
    for i in range(100):
        weights.add(f"item-{i}", 1.0)
    assert len(weights.weights) <= 20
    assert sum(share for _, share in weights.shares()) == pytest.approx(
        sum(w for _, w in weights.top()) / sum(weights.weights.values()) * weights.scale
    )


def test_profiles_sum_interest_by_category() -> None:
    interest = new_interest()
    for sku in ["a1", "a1", "a2", "b1"]:
        interest.add(sku, 1.0)
    profile = Profile.of(interest, {"a1": "A", "a2": "A", "b1": "B"}, ["b1"])
    assert [s for s, _ in profile.items] == ["a1", "b1", "a2"]  # a2 is older than b1
    assert [c for c, _ in profile.categories] == ["A", "B"]
    assert sum(share for _, share in profile.categories) == pytest.approx(1.0)


def test_again_lists_own_items_by_interest_then_recency() -> None:
    profile = Profile([("butter", 0.4), ("tea", 0.4), ("jam", 0.2)], [], ["tea", "jam", "butter"])
    assert [s for s, _ in again(profile, 5)] == ["tea", "butter", "jam"]
    assert again(profile, 1) == [("tea", 0.4)]
    assert again(Profile([], [], []), 5) == []


def test_buy_again_puts_what_everybody_buys_before_what_the_shopper_only_looked_at() -> None:
    own = [("cheese", 0.4), ("salt", 0.3), ("milk", 0.2), ("saffron", 0.1)]
    popularity = {"cheese": 4.0, "salt": 1.0, "milk": 16.0}  # saffron past the list's end
    # share × popularity**0.5: cheese 0.8, salt 0.3, milk 0.8 (the earlier first), saffron
    # 0.4 (it counts the list's floor, 16)
    assert [s for s, _ in likely_again(own, popularity, floor=16.0)] == [
        "cheese",
        "milk",
        "saffron",
        "salt",
    ]
    assert dict(likely_again(own, popularity)) == dict(own)  # each keeps its share
    assert likely_again(own, {}) == own  # no popularity read: the order as stored
    assert likely_again(own, {"salt": 0.2}) == own  # popularity under 1 counts 1


def test_discover_never_lists_what_the_shopper_touched() -> None:
    interest = new_interest()
    for sku in ["butter", "tea", "bread"]:
        interest.add(sku, 1.0)
    profile = Profile.of(interest, {"butter": "dairy"}, ["butter", "tea"])
    near = {"butter": {"bread": 0.9, "cheese": 0.5}, "tea": {"lemon": 0.6, "butter": 0.4}}
    ranked, source = discover(
        profile,
        {"dairy": [("milk", 5.0), ("butter", 5.0)]},
        near,
        [("bread", 50.0), ("eggs", 40.0)],
        k=5,
    )
    assert source == "similar"
    skus = [s for s, _ in ranked]
    assert not {"butter", "tea", "bread"} & set(skus)
    # the blend: the category source's only item holds its whole share (0.6 of 1.6), the
    # neighbours split theirs (the newest item's first); popular items fill the rest
    assert skus == ["milk", "cheese", "lemon", "eggs"]


def test_discover_leaves_out_what_a_long_history_touched_long_ago() -> None:
    """A shopper with more items than buy again keeps (INTEREST_ITEMS): the items touched
    first are no longer among the strongest nor the latest, but they were touched, so
    discover (and the factor source, which leaves out the same set) must not show them."""
    interest = new_interest()
    history: list[str] = []
    skus = [f"p{i:02d}" for i in range(INTEREST_ITEMS + HISTORY)]
    for sku in skus:  # each touched once: the later, the stronger
        interest.add(sku, 1.0)
        remember(history, sku)
    profile = Profile.of(interest, {}, history)
    oldest = skus[0]
    assert oldest not in {s for s, _ in interest.shares()}  # not among the strongest 50
    assert oldest not in history  # nor the latest 20
    assert profile.has_seen(oldest)
    near = {history[0]: {oldest: 0.9, "new": 0.1}}
    ranked, _ = discover(profile, {}, near, [(oldest, 9.0), ("hit", 5.0)], k=3)
    assert [s for s, _ in ranked] == ["new", "hit"]


@pytest.mark.parametrize(
    ("recent", "near", "expected"),
    [
        (["a", "b"], {"a": {"x": 0.5}, "b": {"y": 0.5}}, ["x", "y"]),  # newest first
        (["a", "b"], {"a": {"x": 0.1}, "b": {"y": 0.5}}, ["y", "x"]),  # unless much stronger
        (["a", "b"], {"a": {"x": 0.3}, "b": {"x": 0.3, "y": 0.4}}, ["x", "y"]),  # support adds
    ],
)
def test_discover_weighs_the_history_by_recency(
    recent: list[str], near: dict[str, dict[str, float]], expected: list[str]
) -> None:
    ranked, _ = discover(Profile([], [], recent), {}, near, [], k=5)
    assert [s for s, _ in ranked] == expected


@pytest.mark.parametrize(
    ("categories", "expected"),
    [
        ([("drinks", 1.0)], ["lemon", "coffee", "cake"]),  # coffee: the category's whole share
        ([("drinks", 0.1), ("food", 0.9)], ["lemon", "bun", "cake", "coffee"]),  # by share
        ([], ["lemon", "cake"]),  # no category: the neighbours alone
    ],
)
def test_discover_blends_neighbours_and_category_best_sellers(
    categories: list[tuple[str, float]], expected: list[str]
) -> None:
    profile = Profile([("tea", 1.0)], categories, ["tea"])
    near = {"tea": {"lemon": 0.7, "cake": 0.3}}
    best = {"drinks": [("coffee", 9.0), ("tea", 9.0)], "food": [("bun", 3.0)]}
    ranked, source = discover(profile, best, near, [], k=5)
    assert source == "similar"
    assert [s for s, _ in ranked] == expected
    assert sum(v for _, v in ranked) == pytest.approx(1.0)  # a blend of two distributions


def test_discover_reaches_a_category_s_hundredth_best_seller() -> None:
    # the category source takes each category's 100 best sellers, not fewer
    best = {"drinks": [(f"d{i}", 200.0 - i) for i in range(150)]}
    ranked, source = discover(Profile([], [("drinks", 1.0)], []), best, {}, [], k=150)
    assert source == "category"
    assert [s for s, _ in ranked] == [f"d{i}" for i in range(100)]


@pytest.mark.parametrize("seed", range(40))
def test_the_discover_top_is_the_head_of_the_full_order(seed: int) -> None:
    """``best`` sorts only the items that can be in the top; its answer is the full sort's
    head, ties by sku, whatever the number of items, of ties (scores drawn from a few values
    here) and ``k``."""
    rng = random.Random(seed)
    values = [rng.random() for _ in range(rng.choice([3, 50, 1000]))]
    scores = {f"s{rng.randrange(10_000)}": rng.choice(values) for _ in range(rng.randrange(700))}
    for k in (0, 1, 2, 10, 50, len(scores), len(scores) + 5):
        assert best(scores, k) == sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def test_discover_falls_back_to_categories_then_popularity() -> None:
    ranked, source = discover(Profile([], [], []), {}, {}, [("milk", 50.0), ("eggs", 40.0)], k=2)
    assert source == "popularity"
    assert [s for s, _ in ranked] == ["milk", "eggs"]
    assert all(math.isfinite(v) and v > 0 for _, v in ranked)
    cold = Profile([("tea", 1.0)], [("drinks", 1.0)], ["tea"])
    ranked, source = discover(cold, {"drinks": [("tea", 9.0), ("coffee", 3.0)]}, {}, [], k=2)
    assert (source, [s for s, _ in ranked]) == ("category", ["coffee"])


def test_mixed_puts_buy_again_first_and_keeps_places_for_discover() -> None:
    assert mixed([("a", 1.0)], [("x", 0.2), ("y", 0.1)], k=3) == [
        ("a", 1.0),
        ("x", 0.2),
        ("y", 0.1),
    ]
    own = [(s, 1.0 - n / 10) for n, s in enumerate("abcdefghijkl")]
    found = [("x", 0.2), ("b", 0.15), ("y", 0.1), ("z", 0.05)]
    assert [s for s, _ in mixed(own, found, k=10)] == [*"abcdefgh", "x", "y"]
    assert [s for s, _ in mixed(own[:3], found, k=6)] == ["a", "b", "c", "x", "y", "z"]
    assert [s for s, _ in mixed(own, [("a", 0.3), ("q", 0.2)], k=4)] == ["a", "b", "c", "q"]
    assert [s for s, _ in mixed([], found, k=2)] == ["x", "b"]
    assert mixed([], [], k=3) == []


def test_prices_follow_tempered_draws_of_the_elasticity() -> None:
    """Each decision draws the elasticity it prices for from the posterior with half its
    std (tempered Thompson sampling): four hundred new products, each one decision on the
    prior (−1.5 ± 1.0), price for draws whose spread is half the prior's, centred on it."""
    pool = CategoryPool()
    t = 1_767_571_200.0
    drawn = []
    for i in range(400):
        pricer = ProductPricer(f"SKU-{i}", list_price=10.0, unit_cost=5.0)
        pricer.start(t)
        pricer.on_time(t + 1.0, Market(), pool)
        found = re.search(r"at elasticity (-?\d+\.\d+)", pricer.reason)
        if found:
            drawn.append(float(found.group(1)))
    mean, std = ProductPricer("SKU-new", 10.0, 5.0).demand.posterior(pool)
    assert len(drawn) > 350
    assert float(np.std(drawn)) == pytest.approx(0.5 * std, rel=0.12)
    assert float(np.mean(drawn)) == pytest.approx(mean, abs=0.1)


@pytest.mark.parametrize("seed", range(3))
def test_a_price_test_is_the_widest_within_its_budget(seed: int) -> None:
    """``price_test_size`` computes the profit at the target once for every width it tries:
    it picks the same width as trying each with :func:`price_test_cost`."""
    rng = random.Random(seed)
    for _ in range(300):
        cost = rng.uniform(2.0, 8.0)
        low, high = cost * 1.05, cost * rng.uniform(1.2, 2.5)
        target = rng.uniform(low, high)
        e, size = rng.uniform(-4.0, -0.2), rng.uniform(0.0, 0.06)
        budget = rng.choice([0.001, 0.01, 0.05])
        want, half = 0.0, size
        while half >= MIN_TEST:
            if price_test_cost(target, half, low, high, cost, e) <= budget:
                want = half
                break
            half *= 0.7
        assert price_test_size(target, size, low, high, cost, e, budget) == want
