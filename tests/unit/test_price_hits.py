"""A cached price sent by the server's protocol, without the network
(``api/server.py`` ``PriceHitsProtocol``, ``api/hot_prices.py`` ``PriceHits``): what it counts
and when, the date it sends, and the request ids it makes. The bytes against uvicorn's own
protocol are compared over real sockets in ``tests/integration/test_price_hits_protocol.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.server import ServerState

from api.hot_prices import PriceHits
from api.metrics import ApiMetrics, new_request_id, random_id
from api.server import PriceHitsProtocol

BODY = b'{"sku":"SKU-1","price":1.0}'
ROUTE = "/prices/{sku}"


class Prices:
    """The one answer the cache holds fresh."""

    def fresh(self, sku: str) -> bytes | None:
        return BODY if sku == "SKU-1" else None


class Transport(asyncio.Transport):
    """What the protocol writes, from one client."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def is_closing(self) -> bool:
        return False

    def resume_reading(self) -> None:
        pass


def _hits() -> PriceHits:
    return PriceHits(Prices(), None, ApiMetrics(), ROUTE, access_log=False)  # type: ignore[arg-type]


def _connected(hits: PriceHits) -> tuple[PriceHitsProtocol, ServerState, Transport]:
    app = Starlette()
    app.state.price_hits = hits
    config = uvicorn.Config(app, http=PriceHitsProtocol, log_config=None, access_log=False)
    config.load()
    state = ServerState()
    protocol = PriceHitsProtocol(config, state, {})
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, state, transport


def _get(sku: str) -> bytes:
    return f"GET /prices/{sku} HTTP/1.1\r\nhost: shop\r\nx-request-id: r\r\n\r\n".encode()


def _counted(metrics: ApiMetrics) -> tuple[float, float]:
    """Hits counted, and requests of the route counted with a latency."""
    text = metrics.render().decode()
    hit = 'tillflow_serving_lookups_total{kind="price",result="hit"} '
    requests = f'tillflow_http_request_duration_seconds_count{{method="GET",route="{ROUTE}"'
    found = {hit: 0.0, requests: 0.0}
    for line in text.splitlines():
        for prefix in found:
            if line.startswith(prefix):
                found[prefix] += float(line.rsplit(" ", 1)[1])
    return found[hit], found[requests]


def test_answers_are_counted_once_the_loop_has_sent_the_requests_ready_with_them() -> None:
    hits = _hits()

    async def burst() -> tuple[tuple[float, float], tuple[float, float]]:
        protocol, _, transport = _connected(hits)
        for _ in range(3):  # three requests read in one turn of the loop
            protocol.data_received(_get("SKU-1"))
        assert len(transport.written) == 3
        during = _counted(hits.metrics)
        await asyncio.sleep(0)
        return during, _counted(hits.metrics)

    during, after = asyncio.run(burst())
    assert during == (0.0, 0.0)  # nothing counted ahead of the burst's answers
    assert after == (3.0, 3.0)


def test_a_hit_sends_the_date_uvicorn_sends_now() -> None:
    async def two_seconds() -> list[bytes]:
        protocol, state, transport = _connected(_hits())
        for date in (b"Tue, 01 Dec 2026 09:00:00 GMT", b"Tue, 01 Dec 2026 09:00:01 GMT"):
            # as uvicorn's tick replaces them each second
            state.default_headers = [(b"date", date), (b"server", b"uvicorn")]
            protocol.data_received(_get("SKU-1"))
        return transport.written

    written = asyncio.run(two_seconds())
    heads = [answer.split(b"\r\n\r\n")[0].split(b"\r\n") for answer in written]
    assert heads == [
        [
            b"HTTP/1.1 200 OK",
            b"date: Tue, 01 Dec 2026 09:00:0%d GMT" % second,
            b"server: uvicorn",
            b"content-length: %d" % len(BODY),
            b"content-type: application/json",
            b"x-request-id: r",
        ]
        for second in (0, 1)
    ]
    assert all(answer.endswith(b"\r\n\r\n" + BODY) for answer in written)


def test_a_made_request_id_is_a_random_uuid4_as_uuid_spells_it() -> None:
    made = [random_id() for _ in range(2_000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, text)
    assert new_request_id([(b"x-request-id", b" given ")]) == "given"
    assert uuid.UUID(new_request_id([(b"x-request-id", b" ")])).version == 4
    assert uuid.UUID(new_request_id([(b"host", b"shop")])).version == 4
