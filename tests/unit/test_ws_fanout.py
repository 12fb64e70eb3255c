"""The websocket fan-out (``api/hub.py``, ``api/live.py``): a price change is rendered once
for every client, and a client that does not read never stalls the others."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from api.hub import Hub, Subscriber
from api.live import pump
from api.metrics import ApiMetrics
from api.state import AppState
from schemas.events import PriceUpdate
from schemas.settings import Settings

WAIT_S = 5.0  # turns a hang into a failure; every wait below ends on an observed fact


def change(sku: str, price: float) -> str:
    """The pub/sub message the flows' PriceWriter publishes for a change."""
    return PriceUpdate(
        event_id=f"e-{sku}-{price}",
        event_time="2026-12-01T03:00:00Z",  # type: ignore[arg-type]
        sku=sku,
        price=price,
        previous_price=1.0,
        reason="test",
        model_version="pricer-test",
    ).model_dump_json()


class Views:
    """A price renderer that says what it was asked: each call's skus."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.version = 0

    async def __call__(self, skus: list[str]) -> dict[str, bytes]:
        self.calls.append(skus)
        self.version += 1
        return {s: f'{{"sku":"{s}","v":{self.version}}}'.encode() for s in skus if s != "gone"}


class Socket:
    """A websocket as ``pump`` uses it; ``stuck`` never finishes a send (a client that has
    stopped reading, whose socket buffer is full)."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.texts: list[str] = []
        self.arrived = asyncio.Event()
        self.closed = asyncio.Event()

    async def send_text(self, text: str) -> None:
        self.arrived.set()
        if self.stuck:
            await asyncio.Future()  # never done
        self.texts.append(text)

    async def receive(self) -> dict[str, Any]:
        await self.closed.wait()
        return {"type": "websocket.disconnect"}

    async def received(self, n: int) -> None:
        while len(self.texts) < n:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), WAIT_S)


def hub(queue_size: int = 64) -> tuple[Hub, ApiMetrics]:
    settings = Settings(environment="test", ws_queue_size=queue_size)
    metrics = ApiMetrics()
    return Hub(settings, metrics), metrics


async def texts(sub: Subscriber, n: int) -> list[str]:
    return [await asyncio.wait_for(sub.queue.get(), WAIT_S) for _ in range(n)]


def test_changes_heard_together_are_rendered_once_for_every_client() -> None:
    async def scenario() -> None:
        h, _ = hub()
        views = Views()
        everything = [h.subscribe_prices(None) for _ in range(3)]
        only_b = h.subscribe_prices(frozenset({"B"}))
        invalidated: list[str] = []
        h.on_price.append(invalidated.append)
        channel = h.keys.price_channel
        for message in (change("A", 2.0), change("B", 3.0), change("gone", 4.0), change("A", 2.5)):
            h.dispatch(channel, message)
        pushing = asyncio.create_task(h.push_prices(views))
        try:
            for sub in everything:  # A after its latest change, in its place; "gone" unknown
                assert await texts(sub, 2) == ['{"sku":"B","v":1}', '{"sku":"A","v":1}']
            assert await texts(only_b, 1) == ['{"sku":"B","v":1}']
            h.dispatch(channel, change("B", 3.5))  # heard after the render: rendered again
            for sub in [*everything, only_b]:
                assert await texts(sub, 1) == ['{"sku":"B","v":2}']
        finally:
            pushing.cancel()
        assert views.calls == [["B", "gone", "A"], ["B"]]
        assert invalidated == ["A", "B", "gone", "A", "B"]  # the caches hear every change
        assert all(sub.queue.empty() for sub in [*everything, only_b])

    asyncio.run(scenario())


def test_a_client_that_stopped_reading_never_stalls_the_others() -> None:
    async def scenario() -> None:
        size = 4
        h, metrics = hub(queue_size=size)
        state = cast(AppState, type("State", (), {"metrics": metrics}))
        sockets = [Socket(), Socket(stuck=True), Socket()]
        subs = [h.subscribe_prices(None) for _ in sockets]
        pumps = [
            asyncio.create_task(pump(cast(Any, ws), state, sub))
            for ws, sub in zip(sockets, subs, strict=True)
        ]
        pushing = asyncio.create_task(h.push_prices(Views()))
        changes = 3 * size
        try:
            for i in range(changes):  # each rendered on its own: the readers have caught up
                h.dispatch(h.keys.price_channel, change("A", 2.0 + i))
                for ws in (sockets[0], sockets[2]):
                    await ws.received(i + 1)
            for ws in sockets:
                ws.closed.set()
            await asyncio.wait_for(asyncio.gather(*pumps), WAIT_S)
        finally:
            pushing.cancel()
        every = [f'{{"sku":"A","v":{v}}}' for v in range(1, changes + 1)]
        assert sockets[0].texts == sockets[2].texts == every
        # The stuck client holds the first in its send and the newest in its queue.
        assert sockets[1].texts == []
        assert [subs[1].queue.get_nowait() for _ in range(size)] == every[-size:]
        assert subs[1].dropped == changes - 1 - size
        dropped = metrics.registry.get_sample_value(
            "tillflow_ws_messages_dropped_total", {"channel": "prices"}
        )
        assert dropped == changes - 1 - size
        sent = metrics.registry.get_sample_value(
            "tillflow_ws_messages_sent_total", {"channel": "prices"}
        )
        assert sent == 2 * changes

    asyncio.run(scenario())


def test_the_hub_pushes_in_each_lifespan_of_the_app() -> None:
    """An app's lifespan may run again in another event loop (a test client entered twice):
    the hub's pushes follow it there."""
    h, _ = hub()

    async def lifespan() -> list[str]:
        sub = h.subscribe_prices(None)  # a connection lives within one lifespan
        pushing = asyncio.create_task(h.push_prices(Views()))
        try:
            got = []
            for sku in ("A", "B"):  # the second waits for the pusher's wait after the first
                h.dispatch(h.keys.price_channel, change(sku, 2.0))
                got += await texts(sub, 1)
            return got
        finally:
            pushing.cancel()
            h.unsubscribe(sub)

    pushed = ['{"sku":"A","v":1}', '{"sku":"B","v":2}']
    assert asyncio.run(lifespan()) == asyncio.run(lifespan()) == pushed


def test_a_render_that_fails_does_not_end_the_pushes() -> None:
    """One batch of views that cannot be rendered (a bug, a malformed stored price) is
    skipped; the changes after it are pushed."""

    class Failing(Views):
        def __init__(self) -> None:
            super().__init__()
            self.failed = asyncio.Event()

        async def __call__(self, skus: list[str]) -> dict[str, bytes]:
            if skus == ["bad"]:
                self.failed.set()
                raise ValueError("malformed")
            return await super().__call__(skus)

    async def scenario() -> list[str]:
        h, _ = hub()
        views = Failing()
        sub = h.subscribe_prices(None)
        pushing = asyncio.create_task(h.push_prices(views))
        try:
            h.dispatch(h.keys.price_channel, change("bad", 2.0))
            await asyncio.wait_for(views.failed.wait(), WAIT_S)
            h.dispatch(h.keys.price_channel, change("A", 2.0))
            return await texts(sub, 1)
        finally:
            pushing.cancel()

    assert asyncio.run(scenario()) == ['{"sku":"A","v":1}']
