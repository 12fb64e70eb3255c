"""The Poisson elasticity learner: unbiased recovery from views, from till sales over time,
and from both; partial pooling within a category (pure, synthetic data, known truth)."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Iterable

import numpy as np
import pytest

from benchmarks.elasticity import learning_reports
from flows.records import SkuSignal
from flows.steps import CategoryState, rejoined, sharing
from online_models.demand_pattern import DemandPattern, hour_of
from online_models.elasticity import ELASTICITY, ElasticityModel
from online_models.pooling import (
    DAY_VARIANCE_MIN,
    TAU_GRID,
    CategoryPool,
    CategoryPrior,
    ShopPrior,
    grid_fit,
)
from schemas.catalogue import CatalogueItem

T0 = 1_767_571_200.0  # 2026-01-05, a Monday, 00:00 UTC
LIST = 10.0


def _poisson(rng: random.Random, lam: float) -> int:
    return int(np.random.default_rng(rng.getrandbits(32)).poisson(lam))


def _views_stream(true_e: float, seed: int, conversion: float = 0.04, n: int = 30_000):
    """(price, converted) per view; the price changes every 300 views."""
    rng = random.Random(seed)
    price = LIST
    for i in range(n):
        if i % 300 == 0:
            price = round(LIST * math.exp(rng.uniform(-0.25, 0.25)), 2)
        yield price, rng.random() < conversion * (price / LIST) ** true_e


def _learn_views(
    model: ElasticityModel, pool: CategoryPool, stream: Iterable[tuple[float, bool]], every: float
) -> None:
    """Feed ``model`` a views stream, one view every ``every`` seconds from T0."""
    t = T0
    for price, converted in stream:
        t += every
        model.on_view(price, t, pool)
        if converted:
            model.on_cart(t, pool)


def _new_estimate(true_e: float, seed: int) -> tuple[float, float]:
    pool = CategoryPool()
    model = ElasticityModel("S", LIST)
    _learn_views(model, pool, _views_stream(true_e, seed), every=10.0)
    model.close_views(pool)
    return model.posterior(pool)


def _old_estimate(true_e: float, seed: int, bucket: int = 30) -> float:
    """The regression this learner replaces: log((units + ½) / views) on log price, weighted
    by units + ½, one row per bucket of ``bucket`` views at one price."""
    xs, ys, ws = [], [], []
    views = units = 0
    last = None
    for price, converted in _views_stream(true_e, seed):
        if last is not None and (price != last or views >= bucket):
            xs.append(math.log(last / LIST))
            ys.append(math.log((units + 0.5) / views))
            ws.append(units + 0.5)
            views = units = 0
        last = price
        views += 1
        units += converted
    w = np.array(ws)
    x = np.column_stack([np.ones(len(xs)), xs])
    coef = np.linalg.solve(x.T @ (w[:, None] * x), x.T @ (w * np.array(ys)))
    return float(coef[1])


def test_poisson_learner_is_unbiased_where_the_log_ratio_regression_is_not() -> None:
    """~1 conversion per bucket: the +½ of the old target flattens the slope toward zero."""
    true_e = -2.0
    seeds = range(8)
    new = [_new_estimate(true_e, s) for s in seeds]
    old = [_old_estimate(true_e, s) for s in seeds]
    new_bias = float(np.mean([m for m, _ in new])) - true_e
    old_bias = float(np.mean(old)) - true_e
    std = float(np.mean([sd for _, sd in new]))
    assert abs(new_bias) < 2 * std / math.sqrt(len(new)) + 0.03
    assert old_bias > 0.4  # biased toward zero
    assert all(abs(m - true_e) < 3.5 * sd for m, sd in new)


def _category(skus: dict[str, float]) -> dict[str, CatalogueItem]:
    return {
        sku: CatalogueItem(sku=sku, category="c", list_price=LIST, unit_cost=4.0) for sku in skus
    }


def _hourly(t: float) -> float:
    """True busyness: quiet nights, busy evenings (mean ≈ 1 over the day)."""
    return 0.25 + 1.5 * math.sin(math.pi * hour_of(t) / 24) ** 2


def _run_category(
    truth: dict[str, float],
    channels: str,
    days: int,
    seed: int,
    counts: dict[str, float] | None = None,
) -> CategoryState:
    """A synthetic category fed as the flow feeds it: signals in time order, prices from the
    pricer itself (closed loop), demand from the true elasticities. A cart not bought is
    removed, as a shop's storefront reports it. ``counts`` adds up the carts, web units and
    till units sent."""
    rng = random.Random(seed)
    counts = {} if counts is None else counts
    catalogue = _category(truth)
    state = CategoryState()
    step = 60.0
    t = T0
    for _ in range(int(days * 86_400 / step)):
        t += step
        busy = _hourly(t)
        for sku, e in truth.items():
            sku_state = state.skus.get(sku)
            price = sku_state.pricer.price if sku_state and sku_state.pricer else LIST
            factor = (price / LIST) ** e
            if channels in ("web", "both"):
                for _ in range(_poisson(rng, 0.5 * busy)):  # views
                    state.apply((sku, SkuSignal("view", t)), catalogue)
                    if rng.random() < 0.1 * factor:
                        state.apply((sku, SkuSignal("add_to_cart", t)), catalogue)
                        counts["carts"] = counts.get("carts", 0) + 1
                        if rng.random() < 0.6:
                            state.apply((sku, SkuSignal("sale", t, 1, price)), catalogue)
                            counts["web"] = counts.get("web", 0) + 1
                        else:
                            state.apply((sku, SkuSignal("remove_from_cart", t)), catalogue)
            if channels in ("pos", "both"):
                for _ in range(_poisson(rng, 0.03 * busy * factor)):  # till lines
                    quantity = rng.choice((1, 1, 1, 2))
                    state.apply((sku, SkuSignal("sale", t, quantity, price)), catalogue)
                    counts["till"] = counts.get("till", 0) + quantity
    return state


TRUTH = {"A": -0.8, "B": -1.4, "C": -2.0, "D": -2.6}


@pytest.mark.parametrize(("channels", "days"), [("web", 10), ("pos", 21), ("both", 10)])
def test_each_mode_recovers_known_elasticities(channels: str, days: int) -> None:
    state = _run_category(TRUTH, channels, days, seed=7)
    errors, zs = [], []
    for sku, e in TRUTH.items():
        pricer = state.skus[sku].pricer
        assert pricer is not None
        mean, std = pricer.demand.posterior(state.pool)
        assert pricer.demand.observations > 20
        assert std < 0.5  # moved well away from the prior's width
        errors.append(mean - e)
        zs.append((mean - e) / std)
    assert float(np.mean(np.abs(errors))) < 0.35
    assert max(abs(z) for z in zs) < 3.0
    assert sum(st.pricer.changes for st in state.skus.values() if st.pricer) > 0


def _legs_evidence_z(seed: int, conversion: float, true_e: float = -2.0) -> float:
    """One product's carts per view at two prices ±5 % around the list price (legs of 120
    views, a view every 30 s), read with a flat elasticity prior: the evidence's error in its
    own standard deviations."""
    rng = random.Random(seed)
    pool = CategoryPool()
    model = ElasticityModel("S", LIST)
    model.glm.set_prior(ELASTICITY, -1.5, 100.0)  # the evidence alone
    t = T0
    for i in range(2_400):
        price = LIST * math.exp(0.05 if (i // 120) % 2 else -0.05)
        t += 30.0
        model.on_view(price, t, pool)
        if rng.random() < conversion * (price / LIST) ** true_e:
            model.on_cart(t, pool)
    model.close_views(pool)
    information, weighted = model.glm.likelihood(ELASTICITY)
    return (weighted / information - true_e) * math.sqrt(information)


def test_conversions_per_view_claim_what_they_hold() -> None:
    """A view converts at most once, so carts per view are Bernoulli trials, whose count
    varies less than a Poisson count of the same mean (by 1 − p). At a conversion of 30 %
    the Poisson likelihood claims ~0.7 of what the carts tell (its errors in its own standard
    deviations have a variance of ~0.65 over 200 products: intervals ~1.2× too wide); read
    with the binomial variance they have a variance near 1, and no lean."""
    z = [_legs_evidence_z(seed, conversion=0.3) for seed in range(200)]
    assert 0.8 <= float(np.var(z, ddof=1)) <= 1.25
    assert abs(float(np.mean(z))) < 0.2


BASKETS = (1,) * 15 + (2,) * 4 + (3,)  # units a sale line carries: mean 1.3, E[q²]/E[q] 1.54


def _till_legs_z(seed: int, products: int = 150, days: int = 10) -> list[float]:
    """A category of till products selling in baskets (``BASKETS``) at flat hours, each
    product's price switched between two legs ±5 % around its list price whenever one of its
    buckets closes (at 6 units or after 2 h, as the loop's decisions do); elasticities uniform
    in −3 to −0.5, ~1.5 units an hour at the list price. Returns each product's evidence
    error (its likelihood, the prior divided out) in its own standard deviations."""
    rng = np.random.default_rng(seed)
    pool = CategoryPool()
    truths = rng.uniform(-3.0, -0.5, size=products)
    models = [ElasticityModel(f"S{i}", LIST) for i in range(products)]
    legs = [1.0] * products
    # each product's clock starts at its own time, so the products' legs are not in step
    # (the category's hour pattern would learn legs that all switch at the same hours)
    starts = T0 + rng.uniform(0.0, 7_200.0, size=products)
    step = 600.0
    t = T0
    for _ in range(days * 86_400 // int(step)):
        t += step
        pool.sales.observe(t)
        for i, (model, truth) in enumerate(zip(models, truths, strict=True)):
            if starts[i] > t:
                continue
            if model.hours_due() is None:
                model.start(LIST * math.exp(0.05), t)
            price = LIST * math.exp(0.05 * legs[i])
            closed = False
            lines = rng.poisson(1.5 / 1.3 * (price / LIST) ** truth * step / 3600)
            for q in rng.choice(BASKETS, size=lines):
                closed |= model.on_sale(price, int(q), t, pool) is not None
            due = model.hours_due()
            if due is not None and due <= t:
                closed |= model.close_hours(t, pool) is not None
            if closed:
                legs[i] = -legs[i]
                model.on_price(LIST * math.exp(0.05 * legs[i]), t, pool)
    z = []
    for model, truth in zip(models, truths, strict=True):
        information, weighted = model.glm.likelihood(ELASTICITY)
        z.append((weighted / information - truth) * math.sqrt(information))
    return z


def test_till_units_in_baskets_claim_what_they_hold() -> None:
    """Units sold in baskets of 1–3 are more dispersed than a Poisson count (by E[q²]/E[q]
    = 1.54 here); tempered by the category's dispersion, the evidence is as precise as it
    claims, also with buckets that close at a count of units (the time they held is then
    what varies): the variance of its errors in its own standard deviations is near 1 over
    300 products. Read as a Poisson count of units it claims 1.57 times what it holds
    (that variance, with the temper removed)."""
    z = _till_legs_z(1) + _till_legs_z(2)
    assert 0.8 <= float(np.var(z, ddof=1)) <= 1.25
    assert abs(float(np.mean(z))) < 0.2


def test_web_and_tills_both_count_and_a_web_order_counts_once() -> None:
    """With views and tills, the tills' units per busy hour join the carts per view as
    evidence on the one elasticity; a web order, already counted as its cart, is not counted
    again as a till sale."""
    truth = {"A": -1.5}
    counts: dict[str, float] = {}
    both = _run_category(truth, "both", 8, seed=5, counts=counts)
    pricer = both.skus["A"].pricer
    assert pricer is not None
    demand = pricer.demand
    end = max(demand.hours_due() or 0.0, T0 + 8 * 86_400)
    demand.close_views(both.pool)
    demand.close_hours(end, both.pool)
    # every cart and every till unit once (but the till sale that started the clock, and a
    # cart whose view was the last of a bucket that a price change closed: at most one per
    # change, with the view's ~10 % chance of a cart): not the web units again
    once = counts["carts"] + counts["till"]
    assert once - 0.2 * pricer.changes - 2 <= demand.units <= once - 1
    assert counts["web"] > 0.1 * once
    assert demand.exposure > 0
    mean, std = demand.posterior(both.pool)
    assert abs(mean - truth["A"]) < 3 * std
    # The tills add about half the carts' information here (their units, ~0.75 of the carts',
    # tempered by the baskets' dispersion, 1.6): summed over eight shops, as one closed loop's
    # prices (a product held at the ceiling for days learns little) move it by ±50 % a shop.
    information = {"both": 0.0, "web": 0.0}
    for shop in range(1, 9):
        for mode in information:
            loop = _run_category(truth, mode, 8, seed=shop).skus["A"].pricer
            assert loop is not None
            information[mode] += loop.demand.glm.information(ELASTICITY)
    assert information["both"] > 1.2 * information["web"]


def test_a_sale_is_a_web_order_only_while_its_cart_is_open() -> None:
    """A sale line takes an open cart (a web order); with the cart removed or abandoned,
    the next sale was rung up at a till."""
    pool = CategoryPool()
    model = ElasticityModel("S", LIST)
    hold = model.config.cart_hold_s
    t = T0
    model.on_view(LIST, t, pool)
    model.on_cart(t, pool)
    assert model._web_order(t + 60)  # the cart's order
    assert not model._web_order(t + 61)  # no cart left: a till sale
    model.on_cart(t + 100, pool)
    model.on_uncart(t + 120)
    assert not model._web_order(t + 130)  # the cart was removed
    model.on_cart(t + 200, pool)
    assert not model._web_order(t + 201 + hold)  # abandoned
    assert model._carts == []


def test_open_carts_stay_bounded_under_a_flood_of_carts() -> None:
    """However many carts arrive within the hold, a product keeps at most ``open_carts_max``
    of them (the newest), so its state cannot grow without bound."""
    pool = CategoryPool()
    model = ElasticityModel("S", LIST)
    cap = model.config.open_carts_max
    for i in range(3 * cap):
        model.on_cart(T0 + i * 0.01, pool)
    assert len(model._carts) == cap
    assert model._carts[0] == T0 + 2 * cap * 0.01  # the oldest were dropped


def test_time_without_sales_is_evidence_and_triggers_decisions() -> None:
    """A point-of-sale product that stops selling is still re-priced, by time alone."""
    catalogue = _category({"A": -2.0, "B": -2.0})
    state = CategoryState()
    t = T0
    state.apply(("A", SkuSignal("sale", t, 1, LIST)), catalogue)
    outputs = []
    for i in range(1, 500):  # only B sells from now on
        outputs += state.apply(("B", SkuSignal("sale", t + 600 * i, 1, LIST)), catalogue)
    decided_a = [o for o in outputs if o.sku == "A"]
    pricer = state.skus["A"].pricer
    assert pricer is not None
    assert decided_a
    assert pricer.demand.exposure > 0
    assert pricer.demand.observations >= 10
    assert "exposure h" in pricer.reason
    assert pricer.reason.startswith("time:")


def test_busy_hours_are_not_mistaken_for_price_effects() -> None:
    """High prices at night, low by day, true elasticity 0: the hour pattern (learned from the
    category, here a busier product at a constant price) removes the night's low traffic
    from the price effect; plain clock hours would not."""
    rng = random.Random(3)
    pool = CategoryPool()
    corrected = ElasticityModel("S", LIST)
    units: dict[float, float] = {}
    clock_hours: dict[float, float] = {}
    t = T0
    model_price = None
    for _ in range(21 * 24 * 6):  # 10-minute steps for 3 weeks
        t += 600
        night = hour_of(t) < 7 or hour_of(t) >= 22
        price = 12.0 if night else 8.0
        pool.sales.observe(t)
        if price != model_price:
            if model_price is None:
                corrected.start(price, t)
            else:
                corrected.on_price(price, t, pool)
            model_price = price
        busy = 0.3 if night else 1.4
        for _ in range(_poisson(rng, 20.0 * busy / 6)):
            pool.add_sale_line(t, 1)  # the rest of the category, at its list price
        for _ in range(_poisson(rng, 2.0 * busy / 6)):
            corrected.on_sale(price, 1, t, pool)
            units[price] = units.get(price, 0.0) + 1
        due = corrected.hours_due()
        if due is not None and due <= t:
            corrected.close_hours(t, pool)
        clock_hours[price] = clock_hours.get(price, 0.0) + 600 / 3600
    mean, std = corrected.posterior(pool)
    assert abs(mean) < 3 * std + 0.1
    # units per clock hour at each price say the opposite: a steep (false) elasticity
    rate = {p: units[p] / clock_hours[p] for p in units}
    naive = math.log(rate[12.0] / rate[8.0]) / math.log(12.0 / 8.0)
    assert naive < -3.0 < mean - 2 * std


def test_demand_pattern_learns_hours_and_weekdays() -> None:
    pattern = DemandPattern()
    rng = random.Random(0)
    t = T0
    for _ in range(70 * 24 * 4):  # ten weeks: a weekday needs weeks to stand out of noise
        t += 900
        pattern.observe(t)
        weekend = (int(t // 86_400) + 3) % 7 >= 5
        rate = _hourly(t) * (1.5 if weekend else 0.8) * 20 / 4
        for _ in range(_poisson(rng, rate)):
            pattern.add_units(t, 1)
    saturday_evening = T0 + 5 * 86_400 + 14 * 3600
    monday_night = T0 + 3 * 3600
    truth = (_hourly(saturday_evening) * 1.5) / (_hourly(monday_night) * 0.8)
    learned = pattern.factor(saturday_evening) / pattern.factor(monday_night)
    assert learned == pytest.approx(truth, rel=0.15)


def test_a_product_with_little_data_borrows_from_its_category() -> None:
    prior = CategoryPrior()
    for i in range(12):
        prior.report(f"S{i}", 50.0, 50.0 * (-2.5 + 0.05 * (i % 3 - 1)))
    pool = CategoryPool(prior=prior)
    newcomer = ElasticityModel("NEW", LIST)
    mean, std = newcomer.posterior(pool)
    assert mean == pytest.approx(-2.4, abs=0.15)  # the category, shrunk a little to −1.5
    assert std < 0.6  # tighter than the shop-wide prior (1.0)


def test_a_product_with_much_data_converges_to_its_own_evidence() -> None:
    """Its category's products spread by ~0.4 around −2.5; its own evidence says −1.0."""
    prior = CategoryPrior()
    for i in range(12):
        prior.report(f"S{i}", 50.0, 50.0 * (-2.5 + 0.2 * (i % 5 - 2)))
    pool = CategoryPool(prior=prior)
    model = ElasticityModel("OWN", LIST)
    _learn_views(model, pool, _views_stream(-1.0, seed=11, conversion=0.1, n=60_000), every=5.0)
    mean, std = model.posterior(pool)
    assert mean == pytest.approx(-1.0, abs=max(0.15, 3 * std))
    assert pool.prior.mean < -2.0  # the category still says −2.5 or so


def test_category_spread_does_not_collapse_when_every_product_knows_little() -> None:
    """Twenty products whose evidence is weak (information 0.3: a likelihood std of 1.8) and
    whose true elasticities spread by 0.7: a point estimate of τ (EM, marginal maximum
    likelihood) often lands at 0; the posterior over τ keeps the prior's spread."""
    rng = np.random.default_rng(3)
    stds = []
    for _ in range(20):
        prior = CategoryPrior()
        for i, e in enumerate(rng.normal(-2.0, 0.7, size=20)):
            estimate = rng.normal(e, 1 / math.sqrt(0.3))
            prior.report(f"S{i}", 0.3, 0.3 * estimate)
        stds.append(prior.std)
    assert min(stds) > 0.55


def test_category_mean_follows_products_as_their_evidence_grows() -> None:
    """Eight products around −2.5: a little evidence moves the category part of the way from
    the shop-wide −1.5, much evidence all the way (the shop-wide prior is a prior on the
    category's mean, not pseudo-products that weigh like fully known ones)."""
    means = []
    for information in (0.3, 3.0, 100.0):
        prior = CategoryPrior()
        for i in range(8):
            prior.report(f"S{i}", information, information * (-2.5 + 0.2 * (i % 3 - 1)))
        means.append(prior.mean)
    assert -2.3 < means[0] < -1.7  # about half way: eight weak products weigh as the prior
    assert means[0] > means[1] > means[2]
    assert means[2] == pytest.approx(-2.45, abs=0.1)


def test_precise_identical_products_give_a_narrow_category() -> None:
    prior = CategoryPrior()
    for i in range(50):
        prior.report(f"S{i}", 1e4, 1e4 * -2.0)
    assert prior.std < 0.1
    assert prior.mean == pytest.approx(-2.0, abs=0.01)


def _weak_category(shop: ShopPrior) -> CategoryPool:
    """A category of seven products whose evidence is weak (information 0.2 each)."""
    pool = CategoryPool(name="weak", shop=shop)
    for i, estimate in enumerate([-3.0, -1.0, -2.5, -1.5, -2.0, -2.8, -1.2]):  # mean −2.0
        pool.report(f"W{i}", 0.2, 0.2 * estimate)
    return pool


def test_the_shop_level_moves_a_weak_category() -> None:
    """Nineteen categories that know their mean (−2.0) and one whose seven products know
    little: alone, the weak category stays near the shop-wide −1.5; with the shop level it
    takes the shop's mean."""
    alone = _weak_category(ShopPrior())
    shop = ShopPrior()
    for c in range(19):
        strong = CategoryPool(name=f"c{c}", shop=shop)
        for i in range(8):
            strong.report(f"c{c}-{i}", 20.0, 20.0 * (-2.0 + 0.3 * (i % 3 - 1)))
    pooled = _weak_category(shop)
    assert alone.prior.mean > -1.85  # seven weak products move −1.5 a little
    assert pooled.prior.mean == pytest.approx(-2.0, abs=0.12)
    assert alone.prior.mean > pooled.prior.mean + 0.15
    assert pooled.prior.base_std < 0.3 < alone.prior.base_std


def test_a_category_is_not_its_own_shop_evidence() -> None:
    """A category's prior for its mean leaves its own report out: one category alone in a
    shop gets the shop-wide hyperprior, however precise its products."""
    shop = ShopPrior()
    pool = CategoryPool(name="only", shop=shop)
    for i in range(8):
        pool.report(f"S{i}", 50.0, 50.0 * -2.5)
    assert "only" in shop.reports
    assert shop.for_category("only") == ShopPrior().for_category("only")
    information, weighted = pool.prior.evidence()
    assert weighted / information == pytest.approx(-2.5, abs=0.01)
    assert shop.shop_mean()[0] < -2.0  # the shop as a whole does learn from it


def test_the_shop_mean_is_located_by_every_category() -> None:
    """Twenty categories of seven weak products around a shop mean of −1.75: the categories'
    reports locate the shop mean far better than any one category's products could."""
    rng = np.random.default_rng(11)
    shop = ShopPrior()
    pools = []
    for c in range(20):
        pool = CategoryPool(name=f"c{c}", shop=shop)
        for i, e in enumerate(rng.uniform(-3.0, -0.5, size=7)):
            pool.report(f"c{c}-{i}", 0.3, 0.3 * rng.normal(e, 1 / math.sqrt(0.3)))
        pools.append(pool)
    mean, std = shop.shop_mean()
    assert abs(mean - -1.75) < 2.5 * std
    assert std < 0.35


def test_a_recovered_category_rebuilds_the_shared_shop_level() -> None:
    """Categories priced by one flow process share the shop level; after a restart
    (snapshots unpickled, a fresh level) each resumed category reports its evidence again,
    and the level is what it was."""
    shop_level = ShopPrior()
    states = {}
    for c, e in (("dairy", -2.4), ("bakery", -2.6)):
        truth = {f"{c}-{i}": e for i in range(3)}
        catalogue = {
            sku: CatalogueItem(sku=sku, category=c, list_price=LIST, unit_cost=6.0) for sku in truth
        }
        state = sharing(shop_level)
        for i in range(2_000):
            sku = f"{c}-{i % 3}"
            pricer = state.skus[sku].pricer if sku in state.skus else None
            price = pricer.price if pricer is not None else LIST
            quantity = _poisson(random.Random(i), 2.0 * (price / LIST) ** e)
            if quantity:
                state.apply((sku, SkuSignal("sale", T0 + 600.0 * i, quantity, price)), catalogue)
        states[c] = state
    assert set(shop_level.reports) == {"dairy", "bakery"}
    resumed = ShopPrior()
    for state in states.values():
        rejoined(pickle.loads(pickle.dumps(state)), resumed)
    assert resumed.reports.keys() == shop_level.reports.keys()
    for c in shop_level.reports:
        assert resumed.reports[c] == pytest.approx(shop_level.reports[c])


def test_a_product_counts_its_own_evidence_once() -> None:
    """A product's prior is its category fitted without its own report: its posterior is
    that prior times its own likelihood, not a prior that already holds the likelihood."""
    shop = ShopPrior()
    pool = CategoryPool(name="c", shop=shop)
    for i, e in enumerate([-2.0, -1.6, -2.4]):
        pool.report(f"S{i}", 2.0, 2.0 * e)
    model = ElasticityModel("OWN", LIST)
    _learn_views(model, pool, _views_stream(-0.8, seed=5, conversion=0.08, n=6_000), every=5.0)
    information, weighted = model.glm.likelihood(ELASTICITY)
    others = CategoryPrior(*shop.for_category("c"))
    for i, e in enumerate([-2.0, -1.6, -2.4]):
        others.report(f"S{i}", 2.0, 2.0 * e)
    precision = 1 / others.std**2 + information
    mean, std = model.posterior(pool)
    assert std == pytest.approx(1 / math.sqrt(precision), rel=1e-3)
    assert mean == pytest.approx((others.mean / others.std**2 + weighted) / precision, abs=1e-3)
    assert "OWN" in pool.prior.reports  # the category does learn from it, for the others


@pytest.mark.parametrize("information", [(0.2, 1.0), (0.5, 5.0), (2.0, 20.0)])
def test_intervals_cover_known_elasticities(information: tuple[float, float]) -> None:
    """Parameter recovery over many products and shops: twenty categories of six products
    per shop, elasticities drawn around category means around a shop mean, each product's
    evidence a likelihood of known precision. The 90 % intervals of the products' posteriors
    (prior from the category without the product, from the shop without the category) hold
    the true elasticity 85–95 % of the time, whether the evidence is weak or strong."""
    rng = np.random.default_rng(17)
    covered = []
    for _ in range(12):
        shop = ShopPrior()
        shop_mean = rng.normal(-1.6, 0.3)
        products = []
        for c in range(20):
            pool = CategoryPool(name=f"c{c}", shop=shop)
            mean = rng.normal(shop_mean, 0.2)
            for i in range(6):
                truth = rng.normal(mean, 0.6)
                precision = rng.uniform(*information)
                estimate = rng.normal(truth, 1 / math.sqrt(precision))
                products.append((pool, f"c{c}-{i}", truth, precision, estimate))
                pool.report(f"c{c}-{i}", precision, precision * estimate)
        for pool, sku, truth, precision, estimate in products:
            pool.prior.rebase(*shop.for_category(pool.name))  # the shop level as it ends
            prior_mean, prior_std = pool.prior.for_product(sku)
            total = 1 / prior_std**2 + precision
            mean = (prior_mean / prior_std**2 + precision * estimate) / total
            covered.append(abs(mean - truth) <= 1.6449 / math.sqrt(total))
    assert 0.85 <= float(np.mean(covered)) <= 0.95


def test_a_category_refits_only_when_a_report_moved_and_stays_near_the_exact_prior() -> None:
    """Two shops see the same reports: one refits its categories at every change (exact),
    the other once the reports or the shop's prior moved the category by 2 % of its
    spread (``refit_change``). Every product's prior stays within 0.05 of its std (mean)
    and 5 % (std) of the exact one, with under half the refits."""
    shops = {"exact": ShopPrior(), "lazy": ShopPrior()}
    pools: dict[str, dict[str, CategoryPool]] = {"exact": {}, "lazy": {}}
    refits = {"exact": 0, "lazy": 0}
    worst_mean = worst_std = 0.0
    for category, sku, information, weighted in learning_reports(4, 3_000, categories=3):
        for kind, change in (("exact", 0.0), ("lazy", 0.02)):
            pool = pools[kind].get(category)
            if pool is None:
                pool = pools[kind][category] = CategoryPool(
                    name=category, shop=shops[kind], refit_change=change
                )
            fitted = pool.prior.fitted
            pool.report(sku, information, weighted)
            refits[kind] += pool.prior.fitted is not fitted
        for c, exact in pools["exact"].items():
            for s in exact.prior.reports:
                mean, std = exact.prior.for_product(s)
                lazy_mean, lazy_std = pools["lazy"][c].prior.for_product(s)
                worst_mean = max(worst_mean, abs(lazy_mean - mean) / std)
                worst_std = max(worst_std, abs(lazy_std / std - 1.0))
    assert refits["exact"] >= 2_990  # every report that changed at all
    assert refits["lazy"] < refits["exact"] / 2
    assert worst_mean <= 0.05
    assert worst_std <= 0.05


def _reference_grid_fit(
    information: np.ndarray, weighted: np.ndarray, base_mean: float, mean_std: float, scale: float
) -> tuple[float, float]:
    """The grid fit's predictive, written out in full: no term shared or computed ahead."""
    grid = TAU_GRID[:, None]
    w = (information / (1.0 + information * grid**2)).sum(axis=1)
    wd = (weighted / (1.0 + information * grid**2)).sum(axis=1)
    wdd = (weighted**2 / (information * (1.0 + information * grid**2))).sum(axis=1)
    log_w = np.log(information / (1.0 + information * grid**2)).sum(axis=1)
    p0 = 0.0 if math.isinf(mean_std) else 1.0 / mean_std**2
    precision = p0 + w
    mu = (p0 * base_mean + wd) / precision
    quad = wdd + p0 * base_mean**2 - precision * mu**2
    log_post = 0.5 * (log_w - np.log(precision) - quad) - TAU_GRID**2 / (2 * scale**2)
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    mean = float(weights @ mu)
    second = float(weights @ (TAU_GRID**2 + 1.0 / precision + mu**2))
    return mean, math.sqrt(second - mean * mean)


@pytest.mark.parametrize("members", [1, 3, 25])
def test_the_grid_fit_shortcuts_agree_with_the_fit_written_out(members: int) -> None:
    """The fits share terms computed once (the grid's squares, each hyperprior's density
    per spread scale, the members' terms): every scale, alternated so that a term kept
    for another scale would show, gives the fit written out in full."""
    rng = np.random.default_rng(members)
    information = rng.uniform(0.05, 3.0, members)
    weighted = information * rng.normal(-1.5, 0.7, members)
    for scale in (0.7, 0.4, 0.7, 1.3, 0.4):
        for base_mean, mean_std in ((-1.5, 0.6), (-2.0, 0.3), (0.0, math.inf)):
            got = grid_fit(information, weighted, base_mean, mean_std, scale).predictive()
            want = _reference_grid_fit(information, weighted, base_mean, mean_std, scale)
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_a_refit_reports_to_the_shop_what_its_products_say_now() -> None:
    """A refit reports the category's evidence to the shop from the terms of the fit itself
    (one pass over the grid): after every report, what the shop holds for the category is
    what its products said at its last fit, read afresh, and at every refit what they say
    now."""
    shop = ShopPrior()
    pools = {f"c{c}": CategoryPool(name=f"c{c}", shop=shop) for c in range(3)}
    refits = 0
    for category, sku, information, weighted in learning_reports(6, 1_500, categories=3):
        pool = pools[category]
        fitted = pool.prior.fitted
        pool.report(sku, information, weighted)
        assert shop.reports[category] == pool.prior.evidence(fitted=True)
        if pool.prior.fitted is not fitted:
            refits += 1
            assert shop.reports[category] == pool.prior.evidence()
    assert refits > 100


def _overdispersed_shop(seed: int, pinned: bool) -> tuple[list[bool], float]:
    """One category of 100 products, 20 days each at one price a day (log price uniform in
    ±0.2), 200 views a day; each product-day's conversion is multiplied by a gamma variate of
    mean 1 and variance 0.1, so a day's carts are negative-binomial, not Poisson (variance
    ~6× the mean at ~50 carts a day). Returns whether each product's 90 % interval holds its
    elasticity, and the day variance the category learned. ``pinned``: the day variance held
    at its minimum, i.e. the plain Poisson likelihood."""
    rng = np.random.default_rng(seed)
    pool = CategoryPool()
    if pinned:
        pool.day_weight = 1e12
        pool.day_sum = 1e12 * DAY_VARIANCE_MIN
    truths = rng.normal(-1.5, 0.7, size=100)
    models = [ElasticityModel(f"S{i}", LIST) for i in range(100)]
    for day in range(20):
        for model, truth in zip(models, truths, strict=True):
            price = round(LIST * math.exp(rng.uniform(-0.2, 0.2)), 2)
            rate = 0.25 * (price / LIST) ** truth * rng.gamma(10.0, 1 / 10.0)
            carts = set(np.flatnonzero(rng.random(200) < rate).tolist())
            t = T0 + day * 86_400.0 + 36_000.0
            for v in range(200):
                model.on_view(price, t + v, pool)
                if v in carts:
                    model.on_cart(t + v, pool)
            model.close_views(pool)
    covered = []
    for model, truth in zip(models, truths, strict=True):
        mean, std = model.posterior(pool)
        covered.append(abs(mean - truth) <= 1.6449 * std)
    return covered, pool.day_variance


def test_a_products_first_day_reads_nothing_of_the_day_variance() -> None:
    """A new product's level is known only from its first day, so that day's effect cannot
    be told from the level: the day closes without moving the category's day variance (read
    against the level's wide prior instead, it claimed to be known to ±2.5 and read a large
    negative variance)."""
    pool = CategoryPool()
    model = ElasticityModel("S", LIST)
    for v in range(200):
        model.on_view(LIST, T0 + v, pool)
        if v % 10 == 0:
            model.on_cart(T0 + v, pool)
    before = (pool.day_sum, pool.day_weight)
    model.on_view(LIST, T0 + 86_400.0, pool)  # the next day: the first one closes
    model.close_views(pool)
    assert model.day == int((T0 + 86_400.0) // 86_400.0)
    assert (pool.day_sum, pool.day_weight) == before


class _Readings(CategoryPool):
    """A category that keeps each day reading it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.readings: list[tuple[float, float, float]] = []

    def add_day(self, mean: float, variance: float, prior: float) -> None:
        self.readings.append((mean, variance, prior))
        super().add_day(mean, variance, prior)


def _second_day_reading(moved_to: float | None) -> tuple[float, float]:
    """What a product's second day says of its effect, (reading, information): two days of
    views at a 10 % conversion (the second 20 % busier), the category's day variance moved to
    ``moved_to`` by other products after the product's last view of that day."""
    pool = _Readings()
    model = ElasticityModel("S", LIST)
    for day, every in ((0, 10), (1, 8)):
        t = T0 + day * 86_400.0
        for v in range(240):
            model.on_view(LIST, t + v, pool)
            if v % every == 0:
                model.on_cart(t + v, pool)
        model.close_views(pool)
    if moved_to is not None:
        pool.day_sum, pool.day_weight = moved_to * 1e6, 1e6
    model.on_view(LIST, T0 + 2 * 86_400.0, pool)
    model.close_views(pool)
    mean, variance, prior = pool.readings[-1]
    information = 1 / variance - 1 / prior
    return mean / variance / information, information


def test_a_day_is_read_under_the_prior_it_was_learned_with() -> None:
    """Other products' days move the category's day variance while a product's day is open;
    the day is read (what its evidence alone says of its effect) under the prior it was
    learned with, so the reading does not depend on how the category moved meanwhile. Read
    under the category's current variance instead, ``1/variance − 1/prior`` mixes two priors:
    a day learned under 0.04 read against 0.01 claims negative information."""
    still = _second_day_reading(None)
    assert still[1] > 0.0
    for moved in (0.01, 0.1):
        assert _second_day_reading(moved) == pytest.approx(still, rel=1e-9)


def test_the_day_variance_follows_days_of_few_units() -> None:
    """A category's first weeks: sixty product-days of ~10 units each (six products, ten
    days), whose effects each read a day variance of 0.01 exactly (``d² − 1/λ``). The prior
    guess (0.04) weighs as ten such days, so the learned variance is the days' reading
    shrunk by ~10/70 toward it; not held near the guess, as when the prior's days weighed as
    if measured without noise (~12 times a day of 10 units each)."""
    pool = CategoryPool()
    for _ in range(60):
        prior = pool.day_variance
        variance = 1.0 / (1.0 / prior + 10.0)  # the day's posterior after ~10 units
        reading = math.sqrt(0.01 + 1.0 / 10.0)
        pool.add_day(reading * variance * 10.0, variance, prior)
    assert 0.01 < pool.day_variance < 0.01 + 0.03 * 15 / 70


def test_day_effects_keep_intervals_honest_on_overdispersed_demand() -> None:
    """Negative-binomial day counts at prices that change between days, the case where the
    day-to-day variation of demand weighs most: with the day effect and its learned variance
    the 90 % intervals cover at the nominal rate (within a binomial bound of ±3 standard
    errors over 200 products); with the plain Poisson likelihood they claim several times the
    precision the data hold, and cover far less."""
    honest = []
    learned = []
    for seed in (1, 2):
        covered, variance = _overdispersed_shop(seed, pinned=False)
        honest += covered
        learned.append(variance)
    bound = 3 * math.sqrt(0.9 * 0.1 / len(honest))
    assert abs(float(np.mean(honest)) - 0.9) <= bound
    assert all(0.05 <= v <= 0.2 for v in learned)  # the true day variance: ~0.1
    plain, _ = _overdispersed_shop(1, pinned=True)
    assert float(np.mean(plain)) < 0.9 - 3 * math.sqrt(0.9 * 0.1 / len(plain))
