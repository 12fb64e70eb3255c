"""The pure logic of each stateful step: what a signal does to the state, what comes out.

Each state applies a batch of its key's signals at once (``apply_batch``, called by the
keyed-state adapter, :mod:`flows.keyed`) and returns frozen values: what single signals
produced (price changes, drift, item pairs) and, once per batch, the values of what the batch
changed (:class:`flows.records.FeatureRow`, :class:`flows.records.ShopperLists`). The states
themselves never leave their step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from flows.features import ShopperFeatures, SkuFeatures
from flows.records import (
    Accepted,
    Drift,
    FeatureRow,
    Popularity,
    ShopperLists,
    SkuSignal,
    UserSignal,
)
from online_models import popularity as popular
from online_models.pooling import CategoryPool, ShopPrior
from online_models.pricer import Market, PriceChange, ProductPricer
from online_models.recommender import (
    DISCOVER_DEPTH,
    DecayedWeights,
    Profile,
    again,
    new_interest,
    remember,
)
from online_models.similarity import CoOccurrence, Counts, by_item, pairs
from schemas.catalogue import CatalogueItem
from schemas.events import Action, CompetitorPrice, InventoryLevel, Order, UserActivity

PAIR_WEIGHTS = {"view": 1.0, "add_to_cart": 2.0, "wishlist": 1.0, "purchase": 3.0}
POPULARITY_EVERY = 10  # publish a product's popularity every n interactions


Keyed = tuple[str, tuple[str, Any]]  # (key, (key, value)): stateful steps see their key


# product signals: views and carts are demand; a removed cart tells a web order from a till sale
PRODUCT_ACTIONS = frozenset(
    {Action.VIEW.value, Action.ADD_TO_CART.value, Action.REMOVE_FROM_CART.value}
)


def signals(rec: Accepted) -> tuple[list[Keyed], Keyed | None]:
    """An event's per-product signals (keyed by sku) and its shopper signal (keyed by user
    id; None for events that are not a shopper's), made in one pass over the event: this
    runs once for every valid message."""
    e, t = rec.event, rec.t
    if isinstance(e, UserActivity):
        sku, user = e.sku, e.user_id
        kind: Any = e.action._value_  # the plain string (``.value`` is a Python property)
        shopper = user, (user, UserSignal(kind, t, e.session_id, () if sku is None else (sku,)))
        if sku is not None and kind in PRODUCT_ACTIONS:
            return [(sku, (sku, SkuSignal(kind, t)))], shopper
        return [], shopper
    if isinstance(e, Order):
        lines = e.lines
        sales = [
            (line.sku, (line.sku, SkuSignal("sale", t, line.quantity, float(line.unit_price))))
            for line in lines
        ]
        skus = tuple(line.sku for line in lines)
        user = e.user_id
        return sales, (user, (user, UserSignal("purchase", t, f"order:{e.order_id}", skus)))
    if isinstance(e, InventoryLevel):
        return [(e.sku, (e.sku, SkuSignal("stock", t, e.on_hand, source=e.store_id)))], None
    if isinstance(e, CompetitorPrice):
        signal = SkuSignal("competitor", t, price=float(e.price), source=e.competitor)
        return [(e.sku, (e.sku, signal))], None
    return [], None


def sku_signals(rec: Accepted) -> list[Keyed]:
    """Split an event into per-product signals, keyed by sku."""
    return signals(rec)[0]


def user_signal(rec: Accepted) -> Keyed | None:
    """The shopper-side view of an event, keyed by user id (None for other events)."""
    return signals(rec)[1]


class Routed(NamedTuple):
    """A valid event reduced to what the keyed steps need: plain values, cheap to exchange
    between workers (no pydantic model crosses a process boundary)."""

    event_id: str
    t: float
    sku: list[Keyed]  # per-product signals
    user: Keyed | None  # the shopper signal

    @classmethod
    def of(cls, rec: Accepted) -> Routed:
        skus, user = signals(rec)
        return cls(rec.event.event_id, rec.t, skus, user)


class SkuOutput(NamedTuple):
    """What one signal (or the passing of time) produced for one product."""

    sku: str
    change: PriceChange | None = None
    drift: Drift | None = None
    popularity: tuple[str, float] | None = None  # (category, popularity score)


class ProductsOutput(NamedTuple):
    """What one batch of a category's signals produced, emitted once per category and batch."""

    features: list[FeatureRow]  # one per product the batch touched, as the batch left it
    changes: list[PriceChange]  # every price change, in order
    drift: list[Drift]
    popularity: list[Popularity]  # each product's latest, when published in the batch


@dataclass
class SkuState:
    """Features, pricing and popularity of one product.

    ``pool`` is what the product's category learns together (elasticity prior, demand
    pattern); products of one category share it inside their :class:`CategoryState`.
    """

    sku: str
    features: SkuFeatures = field(default_factory=SkuFeatures)
    pricer: ProductPricer | None = None
    category: str = ""
    popularity: float = popular.NONE  # online_models.popularity: a log score
    interactions: int = 0
    last_change: PriceChange | None = None  # the published price, to rebuild Redis from
    pool: CategoryPool = field(default_factory=CategoryPool)

    def market(self) -> Market:
        f = self.features
        return Market(f.min_competitor_price, f.days_of_cover)

    def apply(self, s: SkuSignal) -> SkuOutput:
        self.features.apply(s)
        change = None
        drifted = False
        popularity = None
        pricer = self.pricer
        if pricer is not None:
            pricer.start(s.t)
            if s.kind == "add_to_cart":
                pricer.on_cart(s.t, self.pool)
            elif s.kind == "remove_from_cart":
                pricer.on_uncart(s.t)
            elif s.kind == "view":
                change, drifted = pricer.on_view(s.t, self.market(), self.pool)
            elif s.kind == "sale":
                change, drifted = pricer.on_sale(s.price, s.quantity, s.t, self.market(), self.pool)
        if s.kind in ("view", "add_to_cart", "sale") and self.category:  # catalogue products
            self.popularity = popular.add(self.popularity, s.t)
            self.interactions += 1
            if self.interactions % POPULARITY_EVERY == 1:
                popularity = (self.category, round(self.popularity, 4))
        return self._output(s.t, change, drifted, popularity)

    def on_time(self, t: float) -> SkuOutput | None:
        """Event time reached ``t`` in the product's category: a time-triggered decision."""
        if self.pricer is None:
            return None
        change, drifted = self.pricer.on_time(t, self.market(), self.pool)
        return self._output(t, change, drifted, None)

    def _output(
        self, t: float, change: PriceChange | None, drifted: bool, popularity: Any
    ) -> SkuOutput:
        if change is not None:
            self.last_change = change
        drift = None
        if drifted and self.pricer is not None:
            drift = Drift("elasticity", self.sku, t, round(self.pricer.drift.mean_error, 6))
        return SkuOutput(self.sku, change, drift, popularity)

    def feature_row(self, prior: tuple[float, float] | None = None) -> FeatureRow:
        """The product's feature values as they are now, frozen; ``prior``: its elasticity
        prior (mean, std) as the row reads it (None: the category's current one)."""
        values = self.values(prior)
        return FeatureRow("sku", self.sku, values, self.watermark, self.model_error())

    def model_error(self) -> float | None:
        """The elasticity learner's recent mean absolute error (for metrics), if it learned."""
        if self.pricer is None or self.pricer.drift.updates == 0:
            return None
        return self.pricer.drift.mean_error

    @property
    def watermark(self) -> float:
        return self.features.watermark

    def values(self, prior: tuple[float, float] | None = None) -> dict[str, Any]:
        price = self.pricer.price if self.pricer is not None else self.features.last_price
        values = self.features.values(price)
        if self.pricer is not None:
            prior_mean, prior_std = prior or self.pool.prior.for_product(self.sku)
            mean, std = self.pricer.demand.posterior_under(prior_mean, prior_std)
            evidence = self.pricer.demand.evidence()
            values["elasticity"] = round(mean, 6)
            values["elasticity_std"] = round(std, 6)
            values["observations"] = evidence.observations
            values["elasticity_prior"] = round(prior_mean, 6)
            values["elasticity_prior_std"] = round(prior_std, 6)
            values["evidence_views"] = evidence.views
            values["evidence_units"] = evidence.units
            values["exposure_hours"] = evidence.exposure_hours
            values["elasticity_information"] = evidence.information
            values["decision"] = self.pricer.reason
        return values


def new_sku_state(
    sku: str, catalogue: dict[str, CatalogueItem], pool: CategoryPool | None = None
) -> SkuState:
    pool = pool if pool is not None else CategoryPool()
    item = catalogue.get(sku)
    if item is None:
        return SkuState(sku, pool=pool)
    pricer = ProductPricer(sku, item.list_price, item.unit_cost)
    return SkuState(sku, pricer=pricer, category=item.category, pool=pool)


def category_key(sku: str, categories: dict[str, str]) -> str:
    """The key of a product's pricing state: its category (products outside the catalogue
    are their own key)."""
    category = categories.get(sku)
    return f"category:{category}" if category is not None else f"sku:{sku}"


@dataclass
class CategoryState:
    """The products of one category, priced together.

    They share a :class:`CategoryPool` (partial pooling of elasticities, the hour × weekday
    pattern of sales), and any event of the category moves its clock: products whose
    decision is due by time are re-priced then, though they had no event of their own.
    """

    skus: dict[str, SkuState] = field(default_factory=dict)
    pool: CategoryPool = field(default_factory=CategoryPool)
    next_due: float = float("inf")
    # Each product touched since its last row went out, with its elasticity prior as its last
    # batch left it, and the wall clock of the category's last rows: rows go out at most once
    # per interval, and are built when they go (rows).
    pending: dict[str, tuple[float, float]] = field(default_factory=dict)
    rows_at: float = float("-inf")

    def apply(
        self, item: tuple[str, SkuSignal], catalogue: dict[str, CatalogueItem]
    ) -> list[SkuOutput]:
        sku, s = item
        pool = self.pool
        if not pool.name and sku in catalogue:
            pool.name = catalogue[sku].category  # the category's name at the shop level
        pool.sales.observe(s.t)
        if s.kind == "view":
            pool.conversion.add(s.t, 1.0, 0.0)
        state = self.skus.get(sku)
        if state is None:
            state = self.skus[sku] = new_sku_state(sku, catalogue, pool)
        out = [state.apply(s)]
        if state.pricer is not None:
            self.next_due = min(self.next_due, state.pricer.due_at())
        if s.t >= self.next_due:
            out.extend(self._time_passed(s.t))
        return out

    def apply_batch(
        self,
        items: list[tuple[str, SkuSignal]],
        catalogue: dict[str, CatalogueItem],
        now: float = 0.0,
        every_s: float = 0.0,
    ) -> list[ProductsOutput]:
        """Apply a batch of the category's signals (in event-time order); one output: every
        price change and drift, each product's latest popularity, and the feature rows that
        are due at wall time ``now`` (:meth:`rows`)."""
        touched: dict[str, None] = {}
        changes: list[PriceChange] = []
        drift: list[Drift] = []
        popularity: dict[str, tuple[str, float]] = {}
        for item in items:
            for out in self.apply(item, catalogue):
                touched[out.sku] = None
                if out.change is not None:
                    changes.append(out.change)
                if out.drift is not None:
                    drift.append(out.drift)
                if out.popularity is not None:
                    popularity[out.sku] = out.popularity
        prior = self.pool.prior
        for sku in touched:
            self.pending[sku] = prior.for_product(sku)
        features = self.rows(now, every_s)
        return [ProductsOutput(features, changes, drift, list(popularity.items()))]

    def rows(self, now: float, every_s: float = 0.0) -> list[FeatureRow]:
        """The feature rows of the products held (each as its last batch left it), unless
        the category's last rows are less than ``every_s`` (wall clock) before ``now``.

        A tailing flow gets batches of a few dozen messages, and a row per product and batch
        was mostly rewritten within milliseconds (docs/scaling.md): held, a product's row
        reaches the online store at most ``every_s`` late, and its last row is the same as
        without holding (those held go out on a wake-up and at the flow's end, and are in the
        snapshots meanwhile). A row is built only when it goes out: what it reads of the
        product changes only in a batch that touches the product (and holds it again), and
        what it reads of the category, the product's elasticity prior, is held with it as that
        batch left it; reading the posterior changes nothing. So the row is the one the batch
        would have built, and a row that a later one replaces is never built."""
        if not self.pending or (every_s > 0 and now < self.rows_at + every_s):
            return []
        skus = self.skus
        rows = [skus[sku].feature_row(prior) for sku, prior in self.pending.items()]
        self.pending = {}
        self.rows_at = now
        return rows

    def rows_due(self, every_s: float) -> float | None:
        """The wall clock at which the held rows are due (None: none held)."""
        return self.rows_at + every_s if self.pending else None

    def held_rows(self, now: float) -> list[ProductsOutput]:
        """The held rows, now, as an output of their own (no signal came)."""
        rows = self.rows(now)
        return [ProductsOutput(rows, [], [], [])] if rows else []

    def _time_passed(self, t: float) -> list[SkuOutput]:
        out = []
        due = float("inf")
        for state in self.skus.values():
            if state.pricer is None:
                continue
            at = state.pricer.due_at()
            if at <= t:
                decided = state.on_time(t)
                if decided is not None:
                    out.append(decided)
                at = state.pricer.due_at()  # the decision moved it
            due = min(due, at)
        self.next_due = due
        return out


def sharing(shop_level: ShopPrior) -> CategoryState:
    """A new category's pricing state whose prior hangs from ``shop_level``, the level above
    the categories that those priced in one flow process share."""
    return CategoryState(pool=CategoryPool(shop=shop_level))


def rejoined(state: CategoryState, shop_level: ShopPrior) -> CategoryState:
    """A recovered category's state joined to its process's shop level again.

    The shop level is a function of the categories' evidence, which each category's
    snapshot holds: a resumed category reports its evidence as of its last fit (what it had
    told the level) to ``shop_level`` again, so the level is rebuilt as the categories
    resume (it has no state of its own to recover).
    """
    state.pool.shop = shop_level
    state.pool.shop_seen = -1  # a count of another level: take this one's prior afresh
    if state.pool.name:
        shop_level.report(state.pool.name, *state.pool.prior.evidence(fitted=True))
    return state


class Interaction(NamedTuple):
    """What one shopper signal produced: the item pairs it formed."""

    pairs: list[Keyed]  # (item, (item, [(neighbour, weight), ...])) for the co-occurrence step


class ShopperOutput(NamedTuple):
    """What one batch of a shopper's signals produced, emitted once per shopper and batch."""

    features: FeatureRow  # as the batch left them
    lists: ShopperLists  # as the batch left them
    pairs: list[Keyed]  # every signal's pairs, in order (as :class:`Interaction`)


class HasPairs(Protocol):
    @property
    def pairs(self) -> list[Keyed]: ...


@dataclass
class ShopperState:
    user_id: str
    features: ShopperFeatures = field(default_factory=ShopperFeatures)
    interest: DecayedWeights = field(default_factory=new_interest)
    history: list[str] = field(default_factory=list)  # distinct items, newest first

    def apply(self, s: UserSignal, categories: dict[str, str]) -> Interaction:
        """Update features and interests; pair the signal's catalogue products with the
        shopper's history (products missing from the catalogue never become
        recommendation candidates, nor enter the history)."""
        self.features.apply(s, categories)
        out: list[Keyed] = []
        weight = PAIR_WEIGHTS.get(s.kind)
        if weight is not None:
            for new in s.skus:
                if new not in categories:  # outside the catalogue
                    continue
                self.interest.add(new, 1.0)
                formed = pairs(self.history, new, weight)
                out.extend((item, (item, counts)) for item, counts in by_item(formed).items())
                remember(self.history, new)
        return Interaction(out)

    def apply_batch(
        self, signals: list[UserSignal], categories: dict[str, str], k: int
    ) -> list[ShopperOutput]:
        """Apply a batch of the shopper's signals (in event-time order); one output: their
        pairs, and the features and lists (``k`` items to buy again) as the batch left them."""
        formed: list[Keyed] = []
        for s in signals:
            formed.extend(self.apply(s, categories).pairs)
        return [ShopperOutput(self.feature_row(), self.lists(categories, k), formed)]

    def feature_row(self) -> FeatureRow:
        """The shopper's feature values as they are now, frozen."""
        f = self.features
        return FeatureRow("user", self.user_id, f.values(), f.watermark)

    def profile(self, categories: dict[str, str]) -> Profile:
        """What the recommender builds this shopper's lists from."""
        return Profile.of(self.interest, categories, self.history)

    def lists(self, categories: dict[str, str], k: int) -> ShopperLists:
        """What the shopper's recommendations are served from, as they are now, frozen."""
        profile = self.profile(categories)
        recent = profile.recent[:DISCOVER_DEPTH]
        return ShopperLists(
            self.user_id, again(profile, k), recent, profile.seen, profile.categories
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Bytewax snapshots every shopper an epoch touched (thousands an epoch in a busy shop)
        # while the input waits. As one flat tuple of plain values a shopper pickles in under
        # half the bytes and about a third of the time of its three dataclasses (their class
        # references and field names, the deques' reducer in Python), and loads back equal.
        f, interest = self.features, self.interest
        return _shopper, (
            self.user_id,
            tuple(f.recent_views),
            f.recent_views.maxlen,
            tuple(f.recent_purchases),
            f.recent_purchases.maxlen,
            f.affinity,
            f.affinity_scale,
            f.session_id,
            f.session_events,
            f.session_start,
            f.watermark,
            interest.decay,
            interest.capacity,
            interest.weights,
            interest.scale,
            self.history,
        )


def _shopper(
    user_id: str,
    views: tuple[str, ...],
    views_max: int | None,
    purchases: tuple[str, ...],
    purchases_max: int | None,
    affinity: dict[str, float],
    affinity_scale: float,
    session_id: str,
    session_events: int,
    session_start: float,
    watermark: float,
    decay: float,
    capacity: int,
    weights: dict[str, float],
    scale: float,
    history: list[str],
) -> ShopperState:
    """A shopper's state from :meth:`ShopperState.__reduce__`'s tuple."""
    features = ShopperFeatures(
        deque(views, views_max),
        deque(purchases, purchases_max),
        affinity,
        affinity_scale,
        session_id,
        session_events,
        session_start,
        watermark,
    )
    return ShopperState(user_id, features, DecayedWeights(decay, capacity, weights, scale), history)


@dataclass
class ItemNeighbours:
    """One item's co-occurrence state; ``add`` returns its neighbour list when due."""

    similarity: CoOccurrence = field(default_factory=CoOccurrence)

    def add(self, counts: Counts) -> list[tuple[str, float]] | None:
        """Count one interaction's pairs of this item; its neighbour list when due."""
        due = False
        for neighbour, weight in counts:
            due = self.similarity.add(neighbour, weight) or due
        return self.similarity.similar() if due else None

    def add_each(self, interactions: list[Counts]) -> list[tuple[str, float]] | None:
        """Count several interactions' pairs of this item, in order; the neighbour list as
        :meth:`add` would have published it last (None when none was due).

        Only that list is built: whether an interaction makes the list due depends only on
        how many pairs came before it, so the last due one is found by counting ahead, and
        the lists :meth:`add` would have built for the earlier ones (each a sort of the
        item's neighbours) are never made."""
        similarity = self.similarity
        last, count = -1, similarity.updates
        for i, counts in enumerate(interactions):
            if similarity.due_within(count, count + len(counts)):
                last = i
            count += len(counts)
        published = None
        for i, counts in enumerate(interactions):
            for neighbour, weight in counts:
                similarity.add(neighbour, weight)
            if i == last:
                published = similarity.similar()
        return published

    def apply_batch(self, batch: list[list[Counts]]) -> list[list[tuple[str, float]]]:
        """Count a batch of messages' interactions, in order; the neighbour list as
        :meth:`add_each` would have published it last, if any."""
        published = self.add_each([counts for each in batch for counts in each])
        return [published] if published is not None else []


def coalesce_pairs(outputs: Sequence[HasPairs]) -> list[tuple[str, tuple[str, list[Counts]]]]:
    """A batch of shopper outputs' pairs as one message per item: each interaction's counts
    of that item, in order (:meth:`ItemNeighbours.add_each`). An item is touched by several
    shoppers in a batch; one message instead of one per interaction spares Bytewax's
    per-item cost in the co-occurrence step and the neighbour lists that the next one in the
    same batch would overwrite.

    >>> a = Interaction([("x", ("x", [("y", 1.0)])), ("y", ("y", [("x", 0.5)]))])
    >>> b = Interaction([("x", ("x", [("z", 2.0)]))])
    >>> coalesce_pairs([a, b])
    [('x', ('x', [[('y', 1.0)], [('z', 2.0)]])), ('y', ('y', [[('x', 0.5)]]))]
    """
    by_item: dict[str, list[Counts]] = {}
    for out in outputs:
        for item, (_, counts) in out.pairs:
            each = by_item.get(item)
            if each is None:
                by_item[item] = [counts]
            else:
                each.append(counts)
    return [(item, (item, each)) for item, each in by_item.items()]
