"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, Security, status
from pydantic import BaseModel, Field

from api.auth import READ, claims_of, oauth2
from api.deps import State
from api.problems import responses
from api.search import readiness as search_readiness
from infra.clients import AsyncRedis
from infra.errors import ServiceUnavailable

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str] | None = Field(
        default=None,
        description="With an admin token (`admin:read`) only; anonymous callers get `ready`. "
        "Per dependency: `ok`, or what is wrong. Models report `ok (name:vN)`, "
        "or `not registered` (the API serves without them: streaming lists, no forecast); "
        "a model that fails to load makes the API not ready. `opensearch` is reported but "
        "does not decide readiness: only `/search` needs it.",
    )


async def _ping(client: AsyncRedis) -> bool:
    return bool(await client.ping())  # type: ignore[misc]


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: Kafka and Redis reachable, models loaded",
    response_model_exclude_none=True,
    responses={
        **responses(401),
        503: {"model": Readiness, "description": "A dependency is not ready."},
    },
    dependencies=[Security(oauth2)],
)
async def readyz(state: State, request: Request, response: Response) -> Readiness:
    claims = claims_of(request, required="an admin token for the details")
    detailed = claims is not None and claims.kind == "admin" and READ in claims.scopes
    checks: dict[str, str] = {}
    try:  # bounded by the gate: at most TILLFLOW_API_KAFKA_TIMEOUT_S, at once while paused
        await state.kafka.check()
        checks["kafka"] = "ok"
    except ServiceUnavailable as exc:
        checks["kafka"] = str(exc)
    try:
        await state.redis.run(_ping)
        checks["redis"] = "ok"
    except ServiceUnavailable as exc:
        checks["redis"] = str(exc)
    failed = False
    for name, slot in state.models.items():
        if slot.model is not None:
            checks[f"model:{name}"] = f"ok ({slot.model.label})"
        elif slot.error and "failed to load" in slot.error:
            checks[f"model:{name}"], failed = slot.error, True
        elif slot.error and slot.refused is not None:  # served without it: still ready
            checks[f"model:{name}"] = slot.error
        else:
            checks[f"model:{name}"] = "not registered"
    checks["opensearch"] = await search_readiness(request)  # reported; only search needs it
    ready = checks["kafka"] == "ok" and checks["redis"] == "ok" and not failed
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(ready=ready, checks=checks if detailed else None)
