"""The simulated shop: a discrete-event simulation that emits contract events in time order.

Actors (shopper sessions, the session arrival process, competitor feeds, the nightly
restock) are generators yielding ``(time, item)``; a heap interleaves them so events come
out ordered by event time. ``item`` is an :class:`Emitted` event or a new actor to start.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Union

import numpy as np

from schemas.catalogue import CatalogueItem
from schemas.topics import COMPETITOR_PRICES, INVENTORY, ORDERS, USER_ACTIVITY, Topic
from simulator.catalogue import Product, category_name, make_catalogue
from simulator.config import ShopConfig
from simulator.names import describe
from simulator.prices import PriceBook
from simulator.shoppers import Shoppers, make_shoppers, user_id_of

DAY = 86_400.0
# Share of a day's sessions that start in each hour (UTC): quiet nights, busy evenings.
HOURLY_PROFILE = np.array(
    [
        0.3,
        0.2,
        0.15,
        0.1,
        0.1,
        0.2,
        0.5,
        0.8,
        1.0,
        1.1,
        1.2,
        1.3,
        1.4,
        1.3,
        1.2,
        1.2,
        1.3,
        1.5,
        1.8,
        2.0,
        1.9,
        1.5,
        1.0,
        0.6,
    ]
)
HOURLY_PROFILE = HOURLY_PROFILE / HOURLY_PROFILE.mean()
QUANTITIES = (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3)  # mean 1.3


@dataclass(frozen=True, slots=True)
class Emitted:
    """One event the shop produced: the topic, the message key and the JSON payload."""

    topic: Topic
    key: str
    payload: dict[str, Any]
    time: float  # simulated epoch seconds


Actor = Generator[tuple[float, Union[Emitted, "Actor", None]], None, None]
"""An actor yields (time, item): an event, a new actor to start, or None (just a wake-up)."""


@dataclass
class Purchase:
    time: float
    sku: str
    quantity: int
    unit_price: float


@dataclass
class ShopStats:
    sessions: int = 0
    events: dict[str, int] = field(default_factory=dict)
    orders: int = 0
    units: int = 0
    revenue: float = 0.0
    profit: float = 0.0
    stockouts: int = 0


class Shop:
    """A shop full of shoppers. Iterate :meth:`events` to run it."""

    def __init__(self, config: ShopConfig, prices: PriceBook | None = None) -> None:
        self.config = config
        np_rng = np.random.default_rng(config.seed)
        self.products: list[Product] = make_catalogue(config, np_rng)
        self.shoppers: Shoppers = make_shoppers(config, self.products, np_rng)
        self.prices = prices if prices is not None else PriceBook(self.products)
        self.rng = random.Random(config.seed)
        # Decisions that depend on the published price draw from their own stream, so the
        # rest of the simulation (who visits, what they view) does not shift with prices.
        self.price_rng = random.Random(config.seed + 1)
        self.stats = ShopStats()
        self.purchases: dict[str, list[Purchase]] = {}
        self.start = config.start.timestamp()
        self.expected_daily_units = self._expected_daily_units()
        per_store = self.expected_daily_units / config.stores
        self.stock_target = np.maximum(np.ceil(per_store * config.stock_days), 5).astype(int)
        self.reorder_point = np.ceil(per_store * config.reorder_days).astype(int)
        self.on_hand = np.tile(self.stock_target, (config.stores, 1))  # (stores, products)
        self._day_noise_day = -1
        self._day_noise: list[float] = [1.0] * len(self.products)
        self._competitor_price: dict[tuple[int, int], float] = {}
        self._session_seq = 0
        self._order_seq = 0
        self.user_ids = [user_id_of(u) for u in range(config.shoppers)]
        self._user_cdf: list[float] = (
            np.cumsum(self.shoppers.activity) / self.shoppers.activity.sum()
        ).tolist()
        self._category_cdf: list[list[float]] = self.shoppers.category_cdf.tolist()
        self._blocks = [
            (int(s), int(e))
            for s, e in zip(self.shoppers.block_start, self.shoppers.block_end, strict=True)
        ]
        self._clock: Callable[[float], float] | None = None

    def stamp_with(self, clock: Callable[[float], float] | None) -> None:
        """Stamp events with ``clock(simulated_time)`` (e.g. wall time), not simulated time."""
        self._clock = clock

    def catalogue(self) -> list[CatalogueItem]:
        """The shop's master data: costs, list prices and categories (for the flows), names,
        brands and descriptions (for search and the storefront)."""
        items = []
        for p in self.products:
            category = category_name(p.category)
            name, brand, description = describe(p.index, category)
            items.append(
                CatalogueItem(
                    sku=p.sku,
                    category=category,
                    list_price=p.list_price,
                    unit_cost=p.unit_cost,
                    name=name,
                    brand=brand,
                    description=description,
                )
            )
        return items

    # ----------------------------------------------------------------- ground truth
    def _expected_daily_units(self) -> np.ndarray:
        """Expected units sold per day of each product at its list price (mean weekday)."""
        c = self.config
        view_p = self.shoppers.view_probabilities()
        weights = self.shoppers.activity / self.shoppers.activity.sum()
        views_per_day = c.sessions_per_day * c.mean_views_per_session * (weights @ view_p)
        conversion = np.array([p.conversion for p in self.products])
        mean_qty = sum(QUANTITIES) / len(QUANTITIES)
        result: np.ndarray = views_per_day * conversion * c.checkout_probability * mean_qty
        return result * (self.web_rate + self.till_rate) / c.sessions_per_day

    @property
    def web_rate(self) -> float:
        """Web sessions per day (0 in a point-of-sale-only shop)."""
        return 0.0 if self.config.channels == "pos" else self.config.sessions_per_day

    @property
    def till_rate(self) -> float:
        """Till visits per day (0 in a web-only shop)."""
        return 0.0 if self.config.channels == "web" else self.config.till_visits_per_day

    # ----------------------------------------------------------------- helpers
    def _event_id(self) -> str:
        """A random UUID-formatted id from the seeded stream (same seed, same ids)."""
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _iso(self, t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")

    def _emit(self, topic: Topic, key: str, t: float, body: dict[str, Any]) -> Emitted:
        stamp = t if self._clock is None else self._clock(t)
        payload = {"event_id": self._event_id(), "event_time": self._iso(stamp), **body}
        return Emitted(topic, key, payload, t)

    def weekday(self, t: float) -> int:
        return datetime.fromtimestamp(t, UTC).weekday()

    def _noise(self, t: float) -> list[float]:
        day = int((t - self.start) // DAY)
        if day != self._day_noise_day:
            sigma = self.config.daily_noise_sigma
            self._day_noise = [
                math.exp(self.rng.gauss(0.0, sigma) - sigma * sigma / 2) for _ in self.products
            ]
            self._day_noise_day = day
        return self._day_noise

    def cart_probability(self, product: Product, price: float, t: float) -> float:
        """P(add to cart | view) under the true demand curve at ``price`` and time ``t``."""
        base = product.conversion * product.demand_multiplier(price, self.weekday(t))
        return min(self.config.max_cart_probability, base * self._noise(t)[product.index])

    # ----------------------------------------------------------------- actors
    def _arrivals(self) -> Actor:
        """Sessions start as a Poisson process shaped by the hour-of-day profile."""
        peak = float(HOURLY_PROFILE.max())
        profile = [float(x) for x in HOURLY_PROFILE]
        total = self.web_rate + self.till_rate
        till_share = self.till_rate / total
        rate_max = total / DAY * peak
        t = self.start
        rng = self.rng
        while True:
            t += rng.expovariate(rate_max)
            hour = int((t % DAY) // 3600)
            if rng.random() * peak <= profile[hour]:
                u = min(bisect.bisect_right(self._user_cdf, rng.random()), self.config.shoppers - 1)
                till = till_share >= 1.0 or (till_share > 0.0 and rng.random() < till_share)
                yield t, (self._till_visit(u, t) if till else self._session(u, t))

    def _till_visit(self, u: int, t: float) -> Actor:
        """A shopper in a store: looks at items like a web session (unseen), pays at the till."""
        rng, cfg = self.rng, self.config
        self.stats.sessions += 1
        n_items = min(40, 1 + int(rng.expovariate(1 / (cfg.mean_views_per_session - 0.5))))
        bought: list[int] = []
        for _ in range(n_items):
            j = self._pick_item(u)
            t += rng.expovariate(1 / 40)
            p_buy = self.cart_probability(self.products[j], self.prices.current[j], t)
            if self.price_rng.random() < p_buy * cfg.checkout_probability:
                bought.append(j)
        if bought:
            t += rng.expovariate(1 / 60)
            yield from self._checkout(u, bought, t)

    def _pick_item(self, u: int) -> int:
        sh, rng, blocks = self.shoppers, self.rng, self._blocks
        cdf = self._category_cdf[u]
        c = min(bisect.bisect_right(cdf, rng.random()), len(cdf) - 1)
        s, e = blocks[c]
        while s == e:  # a category without products: fall back to any category
            s, e = blocks[rng.randrange(len(blocks))]
        j = s + int(np.searchsorted(sh.item_cdf[u, s:e], rng.random(), side="right"))
        return min(j, e - 1)

    def _session(self, u: int, t: float) -> Actor:
        rng, cfg = self.rng, self.config
        self._session_seq += 1
        self.stats.sessions += 1
        user, session = self.user_ids[u], f"s-{self._session_seq:09d}"
        base = {"user_id": user, "session_id": session}
        if rng.random() < cfg.search_probability:
            first = self._pick_item(u)
            query = category_name(self.products[first].category)
            yield (
                t,
                self._emit(
                    USER_ACTIVITY,
                    user,
                    t,
                    {**base, "action": "search", "sku": None, "query": query},
                ),
            )
            t += rng.expovariate(1 / 20)
        n_views = 1 + int(rng.expovariate(1 / (cfg.mean_views_per_session - 0.5)))
        n_views = min(n_views, 40)
        cart: list[int] = []
        for _ in range(n_views):
            j = self._pick_item(u)
            product = self.products[j]
            yield (
                t,
                self._emit(USER_ACTIVITY, user, t, {**base, "action": "view", "sku": product.sku}),
            )
            t += rng.expovariate(1 / 25)
            p_cart = self.cart_probability(product, self.prices.current[j], t)
            if self.price_rng.random() < p_cart:
                cart.append(j)
                yield (
                    t,
                    self._emit(
                        USER_ACTIVITY,
                        user,
                        t,
                        {**base, "action": "add_to_cart", "sku": product.sku},
                    ),
                )
                t += rng.expovariate(1 / 15)
            elif rng.random() < cfg.wishlist_probability:
                yield (
                    t,
                    self._emit(
                        USER_ACTIVITY, user, t, {**base, "action": "wishlist", "sku": product.sku}
                    ),
                )
                t += rng.expovariate(1 / 10)
        bought: list[int] = []
        for j in cart:
            if rng.random() < cfg.checkout_probability:
                bought.append(j)
            else:
                yield (
                    t,
                    self._emit(
                        USER_ACTIVITY,
                        user,
                        t,
                        {**base, "action": "remove_from_cart", "sku": self.products[j].sku},
                    ),
                )
                t += rng.expovariate(1 / 10)
        if bought:
            t += rng.expovariate(1 / 30)
            yield from self._checkout(u, bought, t)

    def _checkout(self, u: int, bought: list[int], t: float) -> Actor:
        store = int(self.shoppers.home_store[u])
        user = self.user_ids[u]
        lines, sold = [], []
        quantities: dict[int, int] = {}
        for j in bought:  # the same product carted twice is one line with both quantities
            quantities[j] = quantities.get(j, 0) + self.rng.choice(QUANTITIES)
        for j, qty in quantities.items():
            if self.on_hand[store, j] < qty:
                self.stats.stockouts += 1
                continue
            price = round(self.prices.current[j], 2)
            self.on_hand[store, j] -= qty
            product = self.products[j]
            lines.append({"sku": product.sku, "quantity": qty, "unit_price": price})
            sold.append(j)
            self.purchases.setdefault(user, []).append(Purchase(t, product.sku, qty, price))
            self.stats.units += qty
            self.stats.revenue += qty * price
            self.stats.profit += qty * (price - product.unit_cost)
        if not lines:
            return
        self._order_seq += 1
        self.stats.orders += 1
        order_id = f"o-{self._order_seq:09d}"
        yield (
            t,
            self._emit(
                ORDERS,
                order_id,
                t,
                {
                    "order_id": order_id,
                    "user_id": user,
                    "store_id": f"store-{store + 1:02d}",
                    "lines": lines,
                },
            ),
        )
        for j in sold:
            yield t, self._inventory_event(store, j, t)

    def _inventory_event(self, store: int, j: int, t: float) -> Emitted:
        sku = self.products[j].sku
        return self._emit(
            INVENTORY,
            sku,
            t,
            {
                "sku": sku,
                "store_id": f"store-{store + 1:02d}",
                "on_hand": int(self.on_hand[store, j]),
            },
        )

    def _restock(self) -> Actor:
        """At the start and every night at 04:00 UTC, stores refill what runs low."""
        t = self.start
        for store in range(self.config.stores):
            for j in range(len(self.products)):
                yield t, self._inventory_event(store, j, t)
        t = self.start - (self.start % DAY) + 4 * 3600
        if t <= self.start:
            t += DAY
        while True:
            low = np.argwhere(self.on_hand <= self.reorder_point[None, :])
            for store, j in low:
                self.on_hand[store, j] = self.stock_target[j]
                yield t, self._inventory_event(int(store), int(j), t)
            yield t, None
            t += DAY

    def _competitors(self) -> Actor:
        """Competitors' prices follow a log random walk around the list price."""
        cfg, rng = self.config, self.rng
        pairs = [(j, c) for j in range(len(self.products)) for c in range(cfg.competitors)]
        t = self.start
        for j, c in pairs:
            self._competitor_price[(j, c)] = self.products[j].list_price * math.exp(
                rng.gauss(0.0, 0.08)
            )
            yield t, self._competitor_event(j, c, t)
        if not pairs or cfg.competitor_updates_per_day <= 0:
            return
        rate = len(pairs) * cfg.competitor_updates_per_day / DAY
        while True:
            t += rng.expovariate(rate)
            j, c = pairs[rng.randrange(len(pairs))]
            anchor = math.log(self.products[j].list_price)
            log_p = math.log(self._competitor_price[(j, c)])
            log_p += 0.05 * (anchor - log_p) + rng.gauss(0.0, cfg.competitor_drift_sigma)
            self._competitor_price[(j, c)] = math.exp(log_p)
            yield t, self._competitor_event(j, c, t)

    def _competitor_event(self, j: int, c: int, t: float) -> Emitted:
        sku = self.products[j].sku
        price = max(0.01, round(self._competitor_price[(j, c)], 2))
        return self._emit(
            COMPETITOR_PRICES,
            sku,
            t,
            {"sku": sku, "competitor": f"competitor-{chr(ord('a') + c)}", "price": price},
        )

    # ----------------------------------------------------------------- driver
    def events(self, until: float | None = None) -> Iterator[Emitted]:
        """Run the shop, yielding events in event-time order until simulated time ``until``."""
        heap: list[tuple[float, int, Emitted | Actor | None, Actor]] = []
        seq = 0

        def advance(actor: Actor) -> None:
            nonlocal seq
            try:
                t, item = next(actor)
            except StopIteration:
                return
            seq += 1
            heapq.heappush(heap, (t, seq, item, actor))

        for actor in (self._restock(), self._competitors(), self._arrivals()):
            advance(actor)
        while heap:
            t, _, item, actor = heapq.heappop(heap)
            if until is not None and t >= until:
                return
            if isinstance(item, Emitted):
                counts = self.stats.events
                counts[item.topic.name] = counts.get(item.topic.name, 0) + 1
                yield item
            elif item is not None:
                advance(item)
            advance(actor)


class Phases:
    """One run of a shop's events, taken in phases: :meth:`until` yields the events before a
    simulated time and keeps the first later one for the next phase (a backfill of history up
    to now, then live traffic, from one shop).

    >>> shop = Shop(ShopConfig(products=5, shoppers=20, sessions_per_day=50))
    >>> phases = Phases(shop.events())
    >>> first = list(phases.until(shop.start + 3_600))
    >>> second = list(phases.until(shop.start + 7_200))
    >>> all(e.time < shop.start + 3_600 <= f.time for e in first for f in second)
    True
    >>> [e.payload["event_id"] for e in first + second] == [
    ...     e.payload["event_id"] for e in Shop(shop.config).events(until=shop.start + 7_200)]
    True
    """

    def __init__(self, events: Iterator[Emitted]) -> None:
        self._events = events
        self._held: Emitted | None = None

    def until(self, t: float | None = None) -> Iterator[Emitted]:
        """The next events with simulated time before ``t`` (all of them when ``None``)."""
        if self._held is not None:
            if t is not None and self._held.time >= t:
                return
            held, self._held = self._held, None
            yield held
        for event in self._events:
            if t is not None and event.time >= t:
                self._held = event
                return
            yield event
