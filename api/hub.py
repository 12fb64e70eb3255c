"""Websocket fan-out: one Redis pub/sub listener per API process feeding bounded client queues.

The same listener tells the API's caches what changed: a product's price, a shopper's lists,
the catalogue.

The listener never waits for a client: it offers each message to every interested
subscriber's queue and moves on. A full queue drops its oldest message (counted in
``tillflow_ws_messages_dropped_total``), so a slow client sees fewer, newer messages and
never stalls the others.

A price change is sent as the product's view, the same for every client, so it is rendered
once, before it is queued: the listener notes the changed sku, and one task of the hub
renders the skus changed since its last render together (one read of the price service:
cache, then Redis) and offers each view's text to the queues. A connection's task then only
sends: one wake-up per client and change, and no per-client work beyond the send. Changes
that arrive while a render is in flight wait for the next one, so a burst of changes costs
one read, and a product changed twice in it is sent once, as it is after its latest change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress

import structlog
from redis.exceptions import RedisError

from api.metrics import ApiMetrics
from infra.clients import async_pubsub_client
from infra.errors import ServiceUnavailable
from schemas.events import PriceUpdate
from schemas.keys import RedisKeys
from schemas.settings import Settings

log = structlog.get_logger(__name__)

# The views (JSON) of the known skus among those given, as ``GET /prices`` answers them;
# ServiceUnavailable when they cannot be read now.
Renderer = Callable[[list[str]], Awaitable[dict[str, bytes]]]


class Subscriber:
    """One websocket's queue of outgoing JSON texts."""

    def __init__(self, channel: str, size: int, metrics: ApiMetrics) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=size)
        self._dropped = metrics.ws_dropped.labels(channel=channel)
        self.dropped = 0

    def offer(self, text: str) -> None:
        if self.queue.full():
            with suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
            self._dropped.inc()
        self.queue.put_nowait(text)


class Hub:
    """Subscribers to price changes (all or some skus) and to shoppers' recommendation lists."""

    def __init__(self, settings: Settings, metrics: ApiMetrics) -> None:
        self.keys: RedisKeys = settings.keys
        self.queue_size = settings.ws_queue_size
        self.metrics = metrics
        self.prices: dict[Subscriber, frozenset[str] | None] = {}
        self.recommendations: dict[str, set[Subscriber]] = {}
        self.on_price: list[Callable[[str], None]] = []  # called with the sku of each change
        self.on_recommendations: list[Callable[[str], None]] = []  # with the user id
        # called when the catalogue changed, or when a change may have gone unheard (connecting)
        self.on_catalogue: list[Callable[[], None]] = []
        self.render_prices: Renderer | None = None
        self._reco_prefix = self.keys.recommendation_channel("")
        self._changed: dict[str, None] = {}  # skus changed since the last render, in order
        self._price_changed: asyncio.Event | None = None  # while push_prices runs

    def subscribe_prices(self, skus: frozenset[str] | None) -> Subscriber:
        sub = Subscriber("prices", self.queue_size, self.metrics)
        self.prices[sub] = skus
        self.metrics.ws_connections.labels(channel="prices").inc()
        return sub

    def subscribe_recommendations(self, user_id: str) -> Subscriber:
        sub = Subscriber("recommendations", self.queue_size, self.metrics)
        self.recommendations.setdefault(user_id, set()).add(sub)
        self.metrics.ws_connections.labels(channel="recommendations").inc()
        return sub

    def unsubscribe(self, sub: Subscriber, user_id: str | None = None) -> None:
        if sub.channel == "prices":
            if self.prices.pop(sub, False) is not False:
                self.metrics.ws_connections.labels(channel="prices").dec()
            return
        subs = self.recommendations.get(user_id or "", set())
        if sub in subs:
            subs.discard(sub)
            self.metrics.ws_connections.labels(channel="recommendations").dec()
            if not subs:
                self.recommendations.pop(user_id or "", None)

    def dispatch(self, channel: str, text: str) -> None:
        """Route one pub/sub message to the callbacks and the interested subscribers."""
        if channel == self.keys.price_channel:
            try:
                sku = PriceUpdate.model_validate_json(text).sku
            except ValueError:
                log.warning("ignored a price message that is not a price update", text=text[:200])
                return
            for callback in self.on_price:
                callback(sku)
            if self.prices:
                self._changed.pop(sku, None)  # sent after the latest change, in its place
                self._changed[sku] = None
                if self._price_changed is not None:
                    self._price_changed.set()
        elif channel == self.keys.catalogue_channel:
            self._catalogue_changed()
        elif channel.startswith(self._reco_prefix):
            user_id = channel[len(self._reco_prefix) :]
            for callback in self.on_recommendations:
                callback(user_id)
            for sub in list(self.recommendations.get(user_id, ())):
                sub.offer(text)

    def _catalogue_changed(self) -> None:
        for callback in self.on_catalogue:
            callback()

    async def push_prices(self, render: Renderer) -> None:
        """Render the changed skus' views and offer them to the price subscribers, until
        cancelled (:meth:`listen` runs it with :attr:`render_prices`). Its event belongs to
        the loop it runs in (a lifespan's), like every task of the API."""
        self._price_changed = changed = asyncio.Event()
        if self._changed:
            changed.set()
        try:
            while True:
                await changed.wait()
                changed.clear()
                skus, self._changed = list(self._changed), {}
                try:
                    views = await render(skus)
                except ServiceUnavailable:  # Redis is down: the next change after it brings them
                    continue
                except Exception:  # a view that cannot be rendered must not end every push
                    log.exception("price views not rendered", skus=len(skus))
                    continue
                for sku in skus:
                    view = views.get(sku)
                    if view is None:  # unknown to Redis
                        continue
                    text = view.decode()
                    for sub, wanted in list(self.prices.items()):
                        if wanted is None or sku in wanted:
                            sub.offer(text)
        finally:
            self._price_changed = None

    async def listen(self, settings: Settings, ready: asyncio.Event | None = None) -> None:
        """Follow Redis pub/sub until cancelled, reconnecting after failures; push the price
        changes it hears meanwhile (:meth:`push_prices`)."""
        if self.render_prices is None:
            raise RuntimeError("the hub has no price renderer (api/state.py gives it one)")
        pushing = asyncio.create_task(self.push_prices(self.render_prices), name="price pushes")
        try:
            await self._follow(settings, ready)
        finally:
            pushing.cancel()
            with suppress(asyncio.CancelledError):
                await pushing

    async def _follow(self, settings: Settings, ready: asyncio.Event | None) -> None:
        while True:
            client = async_pubsub_client(settings, timeout_s=2.0)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.price_channel, self.keys.catalogue_channel)
                await pubsub.psubscribe(self._reco_prefix + "*")
                self._catalogue_changed()  # unheard while not subscribed
                if ready is not None:
                    ready.set()
                log.info("listening for price and recommendation changes")
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] in ("message", "pmessage"):
                        self.dispatch(message["channel"], message["data"])
            except (RedisError, OSError) as exc:
                log.warning("pub/sub connection lost; retrying in 1 s", error=str(exc))
                await asyncio.sleep(1.0)
            finally:
                with suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await client.aclose()
