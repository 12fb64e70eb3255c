"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from api.deps import State
from infra.stack.errors import ServiceUnavailable

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str]


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: Kafka reachable",
    responses={503: {"model": Readiness, "description": "A dependency is not ready."}},
)
async def readyz(state: State, response: Response) -> Readiness:
    checks: dict[str, str] = {}
    try:
        await state.producer.start()
        checks["kafka"] = "ok"
    except ServiceUnavailable as exc:
        checks["kafka"] = str(exc)
    ready = all(v == "ok" for v in checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(ready=ready, checks=checks)
