"""A cached price sent by uvicorn's protocol itself (``api/server.py`` ``PriceHitsProtocol``).

Two uvicorn servers run the same app over the real Redis: one with the price-hits protocol,
one with uvicorn's own. Every answer is compared byte for byte (the ``date`` header aside),
and the app counts the requests that reach it, so a hit sent by the protocol is seen not to.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from api.main import create_app
from api.server import PriceHitsProtocol
from flows.catalogue import store_catalogue
from schemas.catalogue import CatalogueItem
from schemas.settings import Settings
from tests.flow_processes import free_port, isolated_settings, wait_until

pytestmark = pytest.mark.integration

A, B = "SKU-HIT-A", "SKU-HIT-B"


@dataclass
class Counted:
    """The app, noting the path of every HTTP request that reaches it."""

    app: ASGIApp
    paths: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@dataclass
class Served:
    port: int
    app: Counted


@pytest.fixture(scope="module")
def shop(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = isolated_settings(
        stack,
        "hits",
        tmp_path_factory.mktemp("hits"),
        rate_limit_per_s=0.001,  # no refill within a test
        rate_limit_burst=1_000,
        api_cache_ttl_s=60.0,
    )
    store_catalogue(
        settings,
        [
            CatalogueItem(sku=A, category="tea", list_price=10.0, unit_cost=4.0),
            CatalogueItem(sku=B, category="tea", list_price=20.0, unit_cost=8.0),
        ],
    )
    return settings


@contextmanager
def serving(
    settings: Settings, http: type[asyncio.Protocol] | str, keep_alive_s: int = 5
) -> Iterator[Served]:
    """The app served by uvicorn with the protocol ``http``, until the block ends."""
    app = Counted(create_app(settings))
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http=http,
        log_config=None,
        access_log=False,  # as api/server.py serves it
        timeout_keep_alive=keep_alive_s,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "uvicorn started", timeout_s=60)
    try:
        yield Served(port, app)
    finally:
        server.should_exit = True
        thread.join(60)


@pytest.fixture
def both(shop: Settings) -> Iterator[tuple[Served, Served]]:
    """The price-hits protocol's server and uvicorn's own, over the same Redis."""
    with serving(shop, PriceHitsProtocol) as hits, serving(shop, "httptools") as plain:
        yield hits, plain


def exchange(port: int, request: bytes, answers: int = 1) -> list[bytes]:
    """Send ``request`` (raw bytes, possibly several requests) on one connection and read
    ``answers`` responses."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request)
        return read_answers(conn, answers)


def read_answers(conn: socket.socket, answers: int) -> list[bytes]:
    """The next ``answers`` responses on ``conn``, each without its ``date`` header (it
    follows the clock)."""
    buffer, out = b"", []
    while len(out) < answers:
        while b"\r\n\r\n" not in buffer:
            buffer += _received(conn)
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        if b"transfer-encoding: chunked" in lines:  # the 429's body: up to its last chunk
            while b"0\r\n\r\n" not in buffer:
                buffer += _received(conn)
            length = buffer.index(b"0\r\n\r\n") + 5
        else:
            sized = (line for line in lines if line.startswith(b"content-length:"))
            length = int(next(sized).split(b":")[1])
        while len(buffer) < length:
            buffer += _received(conn)
        kept = [line for line in lines if not line.startswith(b"date:")]
        out.append(b"\r\n".join(kept) + b"\r\n\r\n" + buffer[:length])
        buffer = buffer[length:]
    assert not buffer, "more bytes than the answers expected"
    return out


def _received(conn: socket.socket) -> bytes:
    chunk = conn.recv(65536)
    assert chunk, "the server closed the connection"
    return chunk


def get(path: str, *headers: str, version: str = "1.1") -> bytes:
    """A raw request; its id is given, so that both servers' answers are the same bytes."""
    lines = [f"GET {path} HTTP/{version}", "host: shop", *(headers or ["x-request-id: r"])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_cached_price_is_sent_by_the_protocol_with_the_apps_bytes(
    both: tuple[Served, Served],
) -> None:
    hits, plain = both
    for served in both:
        exchange(served.port, get(f"/prices/{A}"))  # a miss: read by the app, then cached
    request = get(f"/prices/{A}", "x-request-id: req-1")
    [sent] = exchange(hits.port, request)
    assert sent == exchange(plain.port, request)[0]
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nx-request-id: req-1\r\n" in sent
    assert b'"sku":"SKU-HIT-A"' in sent
    assert hits.app.paths == [f"/prices/{A}"]  # the hit never reached the app
    assert plain.app.paths == [f"/prices/{A}"] * 2
    [generated] = exchange(hits.port, get(f"/prices/{A}", "accept: */*"))
    request_id = generated.split(b"x-request-id: ")[1].split(b"\r\n")[0]
    assert len(request_id) == 32
    metrics = exchange(hits.port, get("/metrics"))[0].decode()
    assert 'tillflow_http_requests_total{method="GET",route="/prices/{sku}",status="200"} 3.0' in (
        metrics
    )
    assert 'tillflow_serving_lookups_total{kind="price",result="hit"} 2.0' in metrics


def test_requests_that_are_not_plain_are_answered_by_the_app(
    both: tuple[Served, Served],
) -> None:
    hits, plain = both
    for served in both:
        exchange(served.port, get(f"/prices/{A}"))
    not_plain = [
        get(f"/prices/{A}", version="1.0"),
        get(f"/prices/{A}", "x-request-id: r", "connection: close"),
        get(f"/prices/{A}", "x-request-id: r", "x-forwarded-for: 10.1.2.3"),
        get(f"/prices/{A}", "x-request-id: r", "content-length: 0"),
        get("/prices/SKU-HIT-%41"),  # the app reads the unescaped path
        get("/prices/SKU-UNKNOWN"),
        get("/prices/"),
    ]
    for request in not_plain:
        assert exchange(hits.port, request) == exchange(plain.port, request)
    assert len(hits.app.paths) == len(plain.app.paths) == 1 + len(not_plain)
    raw = "GET /prices/SKU-HIT-é HTTP/1.1\r\nhost: shop\r\n\r\n".encode()  # not ASCII
    assert exchange(hits.port, raw) == exchange(plain.port, raw)


def test_pipelined_answers_keep_their_order(both: tuple[Served, Served]) -> None:
    hits, plain = both
    for served in both:
        exchange(served.port, get(f"/prices/{A}"))
    # B is read by the app (a miss) while A's answer is cached: A's must wait for B's.
    request = get(f"/prices/{B}", "x-request-id: 1") + get(f"/prices/{A}", "x-request-id: 2")
    first, second = exchange(hits.port, request, answers=2)
    assert [first, second] == exchange(plain.port, request, answers=2)
    assert b'"sku":"SKU-HIT-B"' in first
    assert b'"sku":"SKU-HIT-A"' in second
    # A hit sent by the protocol, then a request the app answers, on the same connection.
    request = get(f"/prices/{A}") + get("/prices/SKU-UNKNOWN")
    hit, unknown = exchange(hits.port, request, answers=2)
    assert [hit, unknown] == exchange(plain.port, request, answers=2)
    assert unknown.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert hits.app.paths == [f"/prices/{A}", f"/prices/{B}", f"/prices/{A}", "/prices/SKU-UNKNOWN"]


def test_a_cached_price_spends_the_clients_rate_limit(shop: Settings) -> None:
    limited = shop.model_copy(update={"rate_limit_burst": 2})
    with serving(limited, PriceHitsProtocol) as hits:
        answers = [exchange(hits.port, get(f"/prices/{A}"))[0] for _ in range(3)]
    assert [a.split(b"\r\n")[0] for a in answers] == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 429 Too Many Requests",
    ]
    assert hits.app.paths == [f"/prices/{A}"] * 2  # the miss, then the refusal
    assert b'{"detail":"rate limit exceeded: at most 0.001 requests/s per client"}' in answers[2]


def test_an_idle_connection_is_closed_after_a_hit_as_after_any_answer(shop: Settings) -> None:
    with serving(shop, PriceHitsProtocol, keep_alive_s=1) as hits:
        exchange(hits.port, get(f"/prices/{A}"))
        with socket.create_connection(("127.0.0.1", hits.port), timeout=30) as conn:
            conn.sendall(get(f"/prices/{A}"))
            [answer] = read_answers(conn, 1)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
            assert conn.recv(1) == b""  # closed by the keep-alive timeout, not left open
    assert hits.app.paths == [f"/prices/{A}"]  # the second was the protocol's hit
