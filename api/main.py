"""Assemble the FastAPI application: lifespan state, middleware, routes and error handlers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import structlog
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse

from api.metrics import ObservabilityMiddleware
from api.ratelimit import RateLimitMiddleware, TokenBucket
from api.routes import (
    admin,
    events,
    graph,
    health,
    metrics,
    pages,
    prices,
    products,
    recommendations,
    ws,
)
from api.state import AppState
from graph.serving import GraphService
from infra.runtime import restore_gc, tune_gc
from infra.stack.errors import ServiceUnavailable
from schemas.settings import Settings

log = structlog.get_logger(__name__)

PUBLIC_PREFIXES = ("/prices", "/products", "/pricing", "/recommendations", "/graph", "/events")


async def _follow_registry(state: AppState) -> None:
    """Reload models when the registry's ``current`` pointer moves."""
    while True:
        await asyncio.sleep(state.settings.model_poll_s)
        try:
            await asyncio.to_thread(state.refresh_models)
        except Exception:  # keep following the registry whatever one pass hit
            log.exception("registry refresh failed; retrying")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (read from the environment when omitted)."""
    settings = settings if settings is not None else Settings()
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
        ]
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
            await state.kafka.producer.stop()
            await state.redis.close()
            await state.graph.close()
            restore_gc()

    app = FastAPI(
        title="tillflow",
        version="0.1.0",
        summary="Live shop events in; prices and recommendations out.",
        lifespan=lifespan,
    )
    for module in (
        prices,
        products,
        recommendations,
        graph,
        ws,
        events,
        admin,
        health,
        metrics,
        pages,
    ):
        app.include_router(module.router)
    if settings.rate_limit_per_s > 0:
        bucket = TokenBucket(settings.rate_limit_per_s, settings.rate_limit_burst)
        app.add_middleware(RateLimitMiddleware, bucket=bucket, prefixes=PUBLIC_PREFIXES)
    app.add_middleware(ObservabilityMiddleware, metrics=state.metrics)

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
