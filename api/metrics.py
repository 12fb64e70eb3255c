"""The API's Prometheus metrics, one registry per application (no module-level metrics).

Names follow Prometheus conventions (units in names, ``_total`` counters); dashboards and
alert rules in ``infra/`` use exactly these.

>>> m = ApiMetrics()
>>> m.lookups.labels(kind="price", result="hit").inc()
>>> b"tillflow_serving_lookups_total" in m.render()
True
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A version 4 UUID's fixed bits (RFC 9562: the version nibble 4, the variant bits 10)
UUID4_FIXED = (0xF000 << 64) | (0xC000 << 48)
UUID4_BITS = (0x4000 << 64) | (0x8000 << 48)

# Latency buckets in seconds: fine below 10 ms, where the objectives are.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

SERIES_KEPT = 1_024  # request label sets whose metric children are kept at hand

log = structlog.get_logger("tillflow.api.access")


class ApiMetrics:
    """Every metric the API exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_seconds = Histogram(
            "tillflow_http_request_duration_seconds",
            "Time from request to response, per route template.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "tillflow_http_requests",
            "HTTP requests answered.",
            ["route", "method", "status"],
            registry=r,
        )
        self.ws_connections = Gauge(
            "tillflow_ws_connections", "Open websocket connections.", ["channel"], registry=r
        )
        self.ws_sent = Counter(
            "tillflow_ws_messages_sent",
            "Messages pushed to websocket clients.",
            ["channel"],
            registry=r,
        )
        self.ws_dropped = Counter(
            "tillflow_ws_messages_dropped",
            "Messages dropped for slow websocket clients (oldest first).",
            ["channel"],
            registry=r,
        )
        self.served_lists = Counter(
            "tillflow_served_lists",
            "Served recommendation lists by outcome: logged (acknowledged by Kafka) or dropped "
            "(Kafka unavailable, or the log's queue full).",
            ["outcome"],
            registry=r,
        )
        for outcome in ("logged", "dropped"):
            self.served_lists.labels(outcome=outcome)
        self._loaded: dict[str, str] = {}
        r.register(_ModelInfo(self._loaded))
        self.lookups = Counter(
            "tillflow_serving_lookups",
            "Serving lookups by outcome: hit (in-process cache), miss (read from Redis), "
            "stale (Redis unavailable, last-known value served).",
            ["kind", "result"],
            registry=r,
        )
        self.refreshed = Counter(
            "tillflow_serving_refreshed",
            "Cached answers re-read from Redis ahead of their expiry (refresh-ahead), by kind.",
            ["kind"],
            registry=r,
        )
        self.refreshed.labels(kind="price")
        for channel in ("prices", "recommendations"):
            self.ws_connections.labels(channel=channel).set(0)
            self.ws_sent.labels(channel=channel)
            self.ws_dropped.labels(channel=channel)
        # Each request label set's histogram and counter, looked up once (prometheus_client's
        # ``labels()`` validates and locks at every call).
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._lookups = {
            (kind, result): self.lookups.labels(kind=kind, result=result)
            for kind in ("price", "recommendations")
            for result in ("hit", "miss", "stale")
        }

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency under its route template."""
        labels = (route, method, str(status))
        series = self._series.get(labels)
        if series is None:
            series = (self.request_seconds.labels(*labels), self.requests.labels(*labels))
            if len(self._series) < SERIES_KEPT:
                self._series[labels] = series
        series[0].observe(seconds)
        series[1].inc()

    def count_lookups(self, kind: str, result: str, n: int = 1) -> None:
        """Count ``n`` lookups of ``kind`` with ``result`` (label children made once)."""
        if n:
            self._lookups[kind, result].inc(n)

    def count_refreshed(self, kind: str, n: int) -> None:
        """Count ``n`` answers of ``kind`` refreshed ahead of their expiry."""
        self.refreshed.labels(kind=kind).inc(n)

    def set_model(self, model: str, version: str | None) -> None:
        """Record that ``model`` now serves ``version`` (None: not loaded)."""
        if version is None:
            self._loaded.pop(model, None)
        else:
            self._loaded[model] = version

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ModelInfo(Collector):
    """``tillflow_model_info{model, version} 1`` for each loaded model, built at scrape time
    (so a replaced version disappears without removing label sets)."""

    def __init__(self, loaded: dict[str, str]) -> None:
        self.loaded = loaded

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "tillflow_model_info",
            "Model versions loaded by the API (value 1).",
            labels=["model", "version"],
        )
        for model, version in sorted(self.loaded.items()):
            family.add_metric([model, version], 1.0)
        yield family


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/prices/{sku}``, without a parameter's
    convertor such as ``:path``, as OpenAPI shows it), so labels stay bounded."""
    route = scope.get("route")
    path = getattr(route, "path_format", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", []):
        template = getattr(candidate, "path_format", None)
        if isinstance(template, str) and candidate.matches(scope)[0] is Match.FULL:
            return template
    return "unmatched"


class ObservabilityMiddleware:
    """Request id, latency histogram, request counter and (when ``access_log``) one structured
    access log line per request.

    The request id comes from the ``X-Request-ID`` header (or is generated), is bound into
    structlog's context for every log line of the request, and is echoed in the response.
    """

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, access_log: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status_code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - start
                route = route_template(scope)
                self.metrics.observe_request(route, scope["method"], status_code, elapsed)
                if self.access_log and route != "/metrics":
                    log.info(
                        "request",
                        method=scope["method"],
                        route=route,
                        path=scope["path"],
                        status=status_code,
                        ms=round(elapsed * 1000, 3),
                    )


def new_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's id: its ``X-Request-ID`` header (stripped, at most 128 characters), or a
    new one when it sends none (:func:`random_id`)."""
    for key, value in headers:
        if key == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text[:128] if text else random_id()
    return random_id()


def random_id() -> str:
    """A random (version 4) UUID's 32 hex digits, as ``uuid.uuid4().hex`` spells them,
    without building the ``UUID`` object: ~0.8 against ~2.3 µs, and a cached price sent by
    the server's protocol (``api/server.py``) spends ~9 µs of CPU in all."""
    bits = int.from_bytes(os.urandom(16)) & ~UUID4_FIXED | UUID4_BITS
    return bits.to_bytes(16).hex()
