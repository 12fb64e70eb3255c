"""Assemble the FastAPI application: lifespan state, routes and error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse

from api.routes import events, graph, health
from api.state import AppState
from graph.serving import GraphService
from infra.stack.errors import ServiceUnavailable
from ingest.producer import EventProducer
from schemas.settings import Settings

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (read from the environment when omitted)."""
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = EventProducer(settings)
        try:
            await producer.start()
        except ServiceUnavailable as exc:  # serve anyway; /readyz and 503s report it
            log.warning("kafka unavailable at start-up", error=str(exc))
        graph_service = GraphService(settings)
        app.state.tillflow = AppState(settings=settings, producer=producer, graph=graph_service)
        try:
            yield
        finally:
            await producer.stop()
            await graph_service.close()

    app = FastAPI(
        title="tillflow",
        version="0.1.0",
        summary="Live shop events in; prices and recommendations out.",
        lifespan=lifespan,
    )
    app.include_router(events.router)
    app.include_router(health.router)
    app.include_router(graph.router)

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
