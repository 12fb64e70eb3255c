"""Reading a product's price for serving: the published price, its history and its model.

:class:`PriceService` is the one read path of ``GET /prices``, ``GET /pricing/{sku}`` and the
``/ws/prices`` push: cache, then Redis, then last known (``api/cache.py``), each answer a
:class:`~schemas.serving.PriceView`. Its :meth:`~PriceService.keep_fresh` task re-reads the
answers read in the last cache interval before they expire (refresh-ahead), so a product
read often is a hit on every read and its misses are batched off the request path.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import numpy as np
import structlog

from api.cache import LastKnown, Requested, read_through
from api.features import FeatureReads, text
from api.metrics import ApiMetrics
from api.onnx_models import LoadedModel, ModelSlot
from api.pricing_detail import PricingDetail, pricing_detail
from api.redis_gate import RedisGate
from api.responses import model_json
from governance.explain import Explanation
from infra.clients import AsyncRedis
from infra.errors import ServiceUnavailable
from online_models.demand_features import demand_features
from schemas.catalogue import CatalogueItem
from schemas.events import PriceUpdate
from schemas.keys import RedisKeys
from schemas.serving import PriceDetails, PriceView, PricingState

log = structlog.get_logger(__name__)

# A refresh-ahead's reads: skus a pipeline, and answers rendered between two turns of the loop
READ_AT_ONCE = 32
RENDERED_AT_ONCE = 4

NOT_SHOWN = {"published_price", "elasticity_information"}  # of the pricing state, in a view


@dataclass(frozen=True, slots=True)
class PriceState:
    """Everything Redis holds about one sku that the price routes use (cached as a unit):
    its published change, its pricing state, the demand model's inputs (Feast: the flows'
    online features and the batch averages, as text by feature name) and its catalogue entry.
    """

    sku: str
    details: PriceDetails | None
    pricing: PricingState
    features: dict[str, str]
    catalogue: CatalogueItem | None


@dataclass(frozen=True, slots=True)
class Priced:
    """A product's state with its answer rendered once (what the price cache holds).

    ``body`` is the JSON of its fresh view, forecast by the demand model ``model`` (None:
    no model); a hit sends it as it is, so a cached answer costs no model run and no
    serialisation.
    """

    state: PriceState
    body: bytes
    model: str | None

    @classmethod
    def of(cls, state: PriceState, demand: LoadedModel | None) -> Priced:
        view = price_view(state, demand=demand)
        return cls(state, model_json(view), None if demand is None else demand.label)


async def read_price_states(
    client: AsyncRedis, keys: RedisKeys, reads: FeatureReads, skus: list[str]
) -> dict[str, PriceState]:
    """One pipelined round trip for all ``skus`` (``client`` returns bytes); unknown skus
    are left out."""
    pipe = client.pipeline(transaction=False)
    for sku in skus:
        pipe.hgetall(keys.price(sku))
        pipe.hgetall(keys.sku_features(sku))
        pipe.hmget(reads.sku.key(sku), list(reads.price.fields))  # type: ignore[arg-type]
    pipe.hmget(keys.catalogue, skus)
    replies = await pipe.execute()
    catalogue = replies[-1]
    out: dict[str, PriceState] = {}
    for i, sku in enumerate(skus):
        details, pricing, model = replies[3 * i : 3 * i + 3]
        item = catalogue[i]
        if not details and item is None:
            continue
        out[sku] = PriceState(
            sku=sku,
            details=PriceDetails.from_hash(text(details)),
            pricing=PricingState.from_hash(pricing),
            features=reads.price.decode(model),
            catalogue=None if item is None else CatalogueItem.model_validate_json(item),
        )
    return out


async def read_priced(
    client: AsyncRedis,
    keys: RedisKeys,
    reads: FeatureReads,
    skus: list[str],
    demand: LoadedModel | None,
) -> dict[str, Priced]:
    """:func:`read_price_states`, each rendered with ``demand``'s forecast."""
    states = await read_price_states(client, keys, reads, skus)
    return {sku: Priced.of(s, demand) for sku, s in states.items()}


def price_view(
    state: PriceState,
    *,
    stale: bool = False,
    demand: LoadedModel | None = None,
    when: datetime | None = None,
) -> PriceView:
    """The response for one sku (list price when nothing was published yet).

    With a demand model, the view carries its forecast of units per day at this price from
    the product's online features and batch averages, the row
    ``online_models.demand_features`` builds in training too.
    """
    d, p = state.details, state.pricing
    list_price = None if state.catalogue is None else state.catalogue.list_price
    price = d.price if d is not None else list_price
    assert price is not None  # read_price_states drops skus with neither
    forecast = None
    if demand is not None:
        row = demand_features(state.features, price, when or datetime.now(UTC))
        forecast = max(0.0, round(float(demand.predict(np.array([row]))[0]), 4))
    return PriceView(
        sku=state.sku,
        price=price,
        previous_price=None if d is None else d.previous_price,
        updated_at=None if d is None else d.updated_at,
        reason="list price (no change published yet)" if d is None else d.reason,
        model_version=None if d is None else d.model_version,
        **p.model_dump(exclude=NOT_SHOWN),
        expected_units_per_day=forecast,
        demand_model=None if demand is None else demand.label,
        stale=stale,
    )


def explain_forecast(
    state: PriceState, price: float, demand: LoadedModel, when: datetime
) -> Explanation | None:
    """Why ``demand`` forecasts what it does for this sku at ``price``: the same row as
    :func:`price_view`'s forecast, explained by the served version's own booster."""
    if demand.explainer is None:
        return None
    return demand.explainer.explain_row(np.array(demand_features(state.features, price, when)))


def unknown_sku(sku: str) -> str:
    """The ``detail`` of the 404 for a sku Redis does not know."""
    return f"unknown sku {sku!r}"


class PriceService:
    """Products' prices for the HTTP and websocket handlers (one per API process)."""

    def __init__(
        self,
        redis: RedisGate,
        cache: LastKnown[Priced],
        keys: RedisKeys,
        reads: FeatureReads,
        demand: ModelSlot,
        metrics: ApiMetrics,
    ) -> None:
        self.redis = redis
        self.cache = cache
        self.keys = keys
        self.reads = reads
        self.demand = demand
        self.metrics = metrics
        self.requested = Requested(cache.ttl_s)  # by GET /prices/{sku}: what keep_fresh reads

    async def answers(self, skus: list[str]) -> dict[str, bytes]:
        """Each known sku's answer (JSON): cache, then Redis, then last-known (``stale``);
        ServiceUnavailable when Redis is down and some sku has no last-known answer."""
        keys, reads, demand = self.keys, self.reads, self.demand.model
        found = await read_through(
            self.redis,
            self.cache,
            skus,
            lambda client, missing: read_priced(client, keys, reads, missing, demand),
            raw=True,
        )
        if found.error is not None and found.unavailable:
            raise found.error
        for result, n in (("hit", found.hits), ("miss", found.misses), ("stale", len(found.stale))):
            self.metrics.count_lookups("price", result, n)
        label = None if demand is None else demand.label
        stale = set(found.stale)
        return {
            sku: p.body
            if sku not in stale and p.model == label
            else model_json(price_view(p.state, stale=sku in stale, demand=demand))
            for sku, p in found.values.items()
        }

    async def answer(self, sku: str) -> bytes | None:
        """``sku``'s answer as :meth:`answers` reads it; None for an unknown sku. A known
        sku is noted as requested (:meth:`keep_fresh`)."""
        body = (await self.answers([sku])).get(sku)
        if body is not None:
            self.requested.note(sku, time.monotonic())
        return body

    def cached(self, sku: str) -> bytes | None:
        """``sku``'s answer when the cache holds it fresh (counted as a hit); None otherwise
        (:meth:`answers` then reads it)."""
        body = self.fresh(sku)
        if body is not None:
            self.metrics.count_lookups("price", "hit")
        return body

    def fresh(self, sku: str) -> bytes | None:
        """``sku``'s answer when the cache holds it fresh and rendered by the demand model
        served now, not counted as a lookup (the caller counts it if it sends it). A fresh
        sku is noted as requested (:meth:`keep_fresh`)."""
        now = time.monotonic()
        found = self.cache.fresh(sku, now)
        demand = self.demand.model
        if found is None or found.model != (None if demand is None else demand.label):
            return None
        self.requested.note(sku, now)
        return found.body

    async def refresh(self, within_s: float, limit: int) -> int:
        """Re-read, in pipelined round trips, the answers requested in the last cache
        interval that expire within ``within_s`` (at most ``limit``, the most recently
        requested first) and cache them; how many were cached. ServiceUnavailable when
        Redis cannot answer (the cache keeps what it holds)."""
        skus = self.requested.due(self.cache, time.monotonic(), within_s, limit)
        if not skus:
            return 0
        keys, reads, demand = self.keys, self.reads, self.demand.model
        refreshed = 0
        # A few at a time, with turns of the event loop between: a tick's replies parsed and
        # its model runs made in one go held the requests behind them (p99 ~9 ms at 2,000/s).
        for start in range(0, len(skus), READ_AT_ONCE):
            batch = skus[start : start + READ_AT_ONCE]
            now = time.monotonic()  # as read_through stamps a read: before it is sent
            read = partial(read_price_states, keys=keys, reads=reads, skus=batch)
            states = await self.redis.run(read, raw=True)
            for i, (sku, state) in enumerate(states.items()):
                if i % RENDERED_AT_ONCE == 0:
                    await asyncio.sleep(0)
                self.cache.put(sku, Priced.of(state, demand), now)
            refreshed += len(states)
            self.metrics.count_refreshed("price", len(states))
        return refreshed

    async def keep_fresh(self, limit: int) -> None:
        """Refresh-ahead, until cancelled: every quarter of the cache interval,
        :meth:`refresh` the answers that would expire before the tick after next.

        A product read in the last interval is then re-read about every half to three
        quarters of the interval, batched with the others, so its reads are hits and
        each answer is still at most the interval old (what Caffeine's ``refreshAfterWrite``
        does for a cache read by many threads). Products not read in the last interval
        expire as before, and ``limit`` bounds a tick's read. A tick that fails never ends
        the task: a Redis outage is logged once (requests fall back to last-known values or
        503 as before), any other failure each time.
        """
        tick_s = self.cache.ttl_s / 4
        down = False
        while True:
            await asyncio.sleep(tick_s)
            try:
                await self.refresh(2 * tick_s, limit)
            except ServiceUnavailable as exc:
                if not down:
                    log.warning("prices not refreshed ahead: Redis unavailable", error=str(exc))
                down = True
            except Exception:  # one tick's failure must not end the refreshes
                log.exception("prices not refreshed ahead")
            else:
                if down:
                    log.info("prices refreshed ahead again")
                down = False

    async def detail(self, sku: str, history: int) -> PricingDetail | None:
        """The pricing page's view of ``sku`` with its last ``history`` changes (None: unknown)."""
        keys, reads = self.keys, self.reads

        async def read(client: AsyncRedis) -> tuple[PriceState | None, list[tuple[bytes, float]]]:
            states = await read_price_states(client, keys, reads, [sku])
            past = await client.zrange(keys.price_history(sku), -history, -1, withscores=True)
            return states.get(sku), past

        found, past = await self.redis.run(read, raw=True)
        if found is None:
            return None
        demand, when = self.demand.model, datetime.now(UTC)
        view = price_view(found, demand=demand, when=when)
        explained = None if demand is None else explain_forecast(found, view.price, demand, when)
        changes = [PriceUpdate.model_validate_json(raw) for raw, _ in past]
        recent = sum(1 for _, score in past if score >= time.time() - 3600)
        return pricing_detail(
            view,
            found.catalogue,
            found.features,
            changes,
            recent,
            None if explained is None or demand is None else (explained, demand.label),
        )
