"""Assemble the FastAPI application: lifespan state, middleware, routes and error handlers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from api.hot_lists import CachedLists
from api.hot_prices import CachedPrices, PriceHits
from api.limits import BodyLimitMiddleware
from api.metrics import ObservabilityMiddleware
from api.openapi import document_middleware
from api.ratelimit import RateLimitMiddleware
from api.routes import (
    admin,
    events,
    governance,
    graph,
    health,
    metrics,
    oauth,
    pages,
    prices,
    products,
    recommendations,
    search,
    session,
    ws,
)
from api.state import AppState
from graph.serving import GraphService
from infra.errors import ServiceUnavailable
from infra.runtime import collect_on_a_clock, restore_gc, tune_gc
from schemas.settings import Settings

log = structlog.get_logger(__name__)

# Rate-limited per client address, one unit per request. Events are charged per event by their
# route (a shopper session on the public budget, a producer client on its own).
PUBLIC_PREFIXES = (
    "/prices",
    "/products",
    "/pricing",
    "/recommendations",
    "/graph",
    "/session",
    "/search",
)


async def _follow_registry(state: AppState) -> None:
    """Reload models when the registry's ``current`` pointer moves."""
    while True:
        await asyncio.sleep(state.settings.model_poll_s)
        try:
            await asyncio.to_thread(state.refresh_models)
        except Exception:  # keep following the registry whatever one pass hit
            log.exception("registry refresh failed; retrying")


def _route(router: APIRouter, endpoint: Callable[..., Any]) -> APIRoute:
    """The route of ``router`` that ``endpoint`` serves."""
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (read from the environment when omitted).

    Refuses (InsecureSettings) to build outside development with development or weak secrets.
    """
    settings = settings if settings is not None else Settings()
    settings.require_safe_secrets()
    state = AppState.create(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await state.kafka.start()
        except ServiceUnavailable as exc:  # serve anyway; /readyz and 503s report it
            log.warning("kafka unavailable at start-up", error=str(exc))
        state.graph = GraphService(
            settings, lambda key: state.redis.run(lambda client: client.get(key))
        )
        state.refresh_models()
        hub_ready = asyncio.Event()
        tasks = [
            asyncio.create_task(state.hub.listen(settings, hub_ready), name="pubsub"),
            asyncio.create_task(_follow_registry(state), name="registry"),
            asyncio.create_task(state.served.run(), name="served-log"),
            asyncio.create_task(state.graph.warm_up(), name="graph warm-up"),
        ]
        if settings.api_gc_young_s > 0:
            collect = collect_on_a_clock(settings.api_gc_young_s, settings.api_gc_full_s)
            tasks.append(asyncio.create_task(collect, name="garbage collection"))
        if settings.api_cache_ttl_s > 0 and settings.api_refresh_ahead_max > 0:
            refreshes = state.price_service.keep_fresh(settings.api_refresh_ahead_max)
            tasks.append(asyncio.create_task(refreshes, name="price refresh"))
        with suppress(TimeoutError):
            await asyncio.wait_for(hub_ready.wait(), timeout=2.0)
        app.state.tillflow = state
        tune_gc()  # start-up objects (FastAPI, onnxruntime, models) are never rescanned
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await state.served.close()  # the lists served last (each batch bounded in time)
            await state.kafka.producer.stop()
            await state.redis.close()
            await state.graph.close()
            restore_gc()

    app = FastAPI(
        title="tillflow",
        version="0.1.0",
        summary="Live shop events in; prices and recommendations out.",
        lifespan=lifespan,
        # The API exports its own Prometheus metrics and access log (api/metrics.py); FastAPI's
        # OpenTelemetry hooks would otherwise look up three global providers per request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    for module in (
        prices,
        products,
        recommendations,
        search,
        graph,
        ws,
        events,
        oauth,
        session,
        admin,
        governance,
        health,
        metrics,
        pages,
    ):
        app.include_router(module.router)
    price_route = _route(prices.router, prices.get_price)
    app.add_middleware(CachedPrices, prices=state.price_service, route=price_route)
    # Sent by uvicorn's protocol itself when it can (api/server.py); the rate limit is the one
    # RateLimitMiddleware spends, since "/prices" is one of PUBLIC_PREFIXES.
    app.state.price_hits = PriceHits(
        state.price_service,
        state.public_limit,
        state.metrics,
        price_route.path_format,
        settings.api_access_log,
    )
    app.add_middleware(
        CachedLists,
        recommender=state.recommendation_service,
        route=_route(recommendations.router, recommendations.get_recommendations),
    )
    if state.public_limit is not None:
        app.add_middleware(RateLimitMiddleware, bucket=state.public_limit, prefixes=PUBLIC_PREFIXES)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(
        ObservabilityMiddleware, metrics=state.metrics, access_log=settings.api_access_log
    )
    routes_only = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_middleware(routes_only(), PUBLIC_PREFIXES)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(_: Request, exc: ServiceUnavailable) -> JSONResponse:
        log.warning("service unavailable", service=exc.service, error=str(exc))
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={"detail": str(exc), "service": exc.service},
        )

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        content = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
        return JSONResponse(status_code=exc.status_code, content=content, headers=exc.headers)

    return app
