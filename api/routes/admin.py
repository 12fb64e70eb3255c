"""Admin: token, models (promote, roll back), jobs (runs, trigger), drift; actions are logged."""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, Security, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from api.auth import READ, SCOPES, WRITE, current_admin, login_failed, throttle_login
from api.deps import State
from api.limits import require_json
from api.passwords import verify_secret
from api.problems import responses
from api.tokens import Claims, Token, issue_token
from batch.runs import KEEP_RUNS
from infra.clients import AsyncRedis
from registry import MODEL_NAME_PATTERN, MlflowUnavailable, RegistryError, UnloadableModel
from schemas.jobs import JOBS, JobRun, check_job, scheduled_jobs

router = APIRouter(prefix="/admin", tags=["admin"])
audit = structlog.get_logger("tillflow.api.audit")

Reader = Annotated[Claims, Security(current_admin, scopes=[READ])]
Writer = Annotated[Claims, Security(current_admin, scopes=[WRITE])]
ModelName = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description="e.g. `demand`.")]
JobName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
ADMIN_ERRORS = (401, 403, 429)


@router.post(
    "/token",
    response_model=Token,
    summary="Log in (OAuth2 password flow) and get a bearer token",
    responses=responses(400, 401, 413, 429),
)
async def token(
    state: State,
    request: Request,
    username: Annotated[str, Form(max_length=128)],
    password: Annotated[str, Form(max_length=256)],
    scope: Annotated[
        str, Form(max_length=256, description="Space-separated scopes; all when empty.")
    ] = "",
) -> Token:
    throttle_login(request, username)
    stored = await asyncio.to_thread(state.admin_password_hash)
    user_ok = hmac.compare_digest(username.encode(), state.settings.admin_username.encode())
    password_ok = await asyncio.to_thread(verify_secret, password, stored)  # even for a bad name
    if not (user_ok and password_ok):
        audit.warning("admin login refused", username=username)
        raise login_failed(request, username, "wrong username or password")
    wanted = scope.split() or list(SCOPES)
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown scope: {', '.join(unknown)}")
    jwt_token, _ = issue_token(state.settings, "admin", username, wanted, now=time.time())
    audit.info("admin login", username=username, scopes=wanted)
    return Token(access_token=jwt_token, expires_in=state.settings.jwt_ttl_s, scopes=wanted)


class VersionInfo(BaseModel):
    version: int
    label: str
    created_at: str | None
    metrics: dict[str, Any]
    current: bool


class ModelInfo(BaseModel):
    name: str
    current: int | None = Field(description="The version MLflow's `champion` alias names.")
    loaded: str | None = Field(description="The version this API process serves.")
    error: str | None
    versions: list[VersionInfo]


def _models(state: Any) -> list[ModelInfo]:
    out = []
    names = sorted(set(state.registry.names()) | set(state.models))
    for name in names:
        current = state.registry.current(name)
        slot = state.models.get(name)
        out.append(
            ModelInfo(
                name=name,
                current=None if current is None else current.version,
                loaded=slot.model.label if slot and slot.model else None,
                error=slot.error if slot else None,
                versions=[
                    VersionInfo(
                        version=v.version,
                        label=v.label,
                        created_at=v.metadata.get("created_at"),
                        metrics=v.metadata.get("metrics", {}),
                        current=current is not None and v.version == current.version,
                    )
                    for v in state.registry.versions(name)
                ],
            )
        )
    return out


@router.get(
    "/models",
    response_model=list[ModelInfo],
    summary="Registered models and versions",
    responses=responses(*ADMIN_ERRORS, 503),
)
async def models(state: State, admin: Reader) -> list[ModelInfo]:
    try:
        return await asyncio.to_thread(_models, state)
    except MlflowUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None


class Promotion(BaseModel):
    version: int = Field(ge=1, le=1_000_000)


@router.post(
    "/models/{name}/promote",
    response_model=ModelInfo,
    summary="Move the champion alias to a version (the API reloads it)",
    responses=responses(*ADMIN_ERRORS, 404, 409, 413, 415, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": Promotion.model_json_schema()}},
        }
    },
)
async def promote(name: ModelName, request: Request, state: State, admin: Writer) -> ModelInfo:
    require_json(request)  # after the credential check, before the body is read
    try:
        body = Promotion.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)  # the input may not be text
        raise RequestValidationError(errors) from None
    try:
        await asyncio.to_thread(state.registry.promote, name, body.version)
    except MlflowUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    except UnloadableModel as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except RegistryError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return await _changed(state, admin, "promote", name, body.version)


@router.post(
    "/models/{name}/rollback",
    response_model=ModelInfo,
    summary="Move the champion alias back to the previous champion",
    responses=responses(*ADMIN_ERRORS, 404, 409, 503),
)
async def rollback(name: ModelName, state: State, admin: Writer) -> ModelInfo:
    try:
        back = await asyncio.to_thread(state.registry.rollback, name)
    except MlflowUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    except RegistryError as exc:
        code = status.HTTP_409_CONFLICT if name in state.registry.names() else 404
        raise HTTPException(code, str(exc)) from None
    return await _changed(state, admin, "rollback", name, back.version)


async def _changed(state: Any, admin: Claims, action: str, name: str, version: int) -> ModelInfo:
    """After a promotion or rollback: audit it, reload the API's models, answer the model."""
    audit.info("admin action", action=action, model=name, version=version, admin=admin.subject)
    await asyncio.to_thread(state.refresh_models)
    return next(m for m in await asyncio.to_thread(_models, state) if m.name == name)


class DriftEvent(BaseModel):
    id: str
    at: datetime | None
    fields: dict[str, str]


class DriftStatus(BaseModel):
    detections: int = Field(description="Drift detections the flows have reported in total.")
    recent: list[DriftEvent] = Field(description="The latest detections, newest first.")
    flow_counters: dict[str, int]


@router.get(
    "/drift",
    response_model=DriftStatus,
    summary="Drift detections and flow counters",
    responses=responses(*ADMIN_ERRORS, 503),
)
async def drift(state: State, admin: Reader) -> DriftStatus:
    keys = state.settings.keys

    async def read(client: AsyncRedis) -> tuple[list[Any], dict[str, str]]:
        pipe = client.pipeline(transaction=False)
        pipe.xrevrange(keys.drift_events, count=50)
        pipe.hgetall(keys.flow_stats)
        recent, stats = await pipe.execute()
        return recent, stats

    recent, stats = await state.redis.run(read)
    events = [
        DriftEvent(id=i, at=datetime.fromtimestamp(int(i.split("-")[0]) / 1000, tz=UTC), fields=f)
        for i, f in recent
    ]
    counters = {k: int(v) for k, v in stats.items() if v.lstrip("-").isdigit()}
    return DriftStatus(
        detections=counters.get("drift_detections", len(events)),
        recent=events,
        flow_counters=counters,
    )


class RunInfo(BaseModel):
    job: str
    status: str
    started_at: str
    duration_s: float
    rows_in: int
    rows_out: int
    error: str | None
    trigger: str


class ScheduleInfo(BaseModel):
    job: str
    every_s: float
    last_at: str | None = Field(description="When it last started (ISO-8601, UTC).")
    next_at: str | None = Field(
        description="When it runs next; null: at the scheduler's next poll."
    )


class Jobs(BaseModel):
    jobs: list[str] = Field(description="Jobs that can be triggered.")
    runs: list[RunInfo] = Field(description="The latest runs, newest first.")
    schedule: list[ScheduleInfo] = Field(
        description="The running scheduler's schedule (empty when none has started)."
    )


def _iso(unix: float | None) -> str | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds")


@router.get(
    "/jobs",
    response_model=Jobs,
    summary="Batch jobs and their latest runs",
    responses=responses(*ADMIN_ERRORS, 503),
)
async def jobs(
    state: State,
    admin: Reader,
    limit: Annotated[int, Query(ge=1, le=KEEP_RUNS)] = 50,
) -> Jobs:
    keys = state.settings.keys

    async def read(client: AsyncRedis) -> tuple[list[Any], dict[Any, Any]]:
        runs = await client.lrange(keys.job_runs, 0, limit - 1)  # type: ignore[misc]
        scheduler = await client.hgetall(keys.scheduler_state)  # type: ignore[misc]
        return list(runs), dict(scheduler)

    raw, scheduler = await state.redis.run(read)
    runs = [RunInfo(**asdict(JobRun.from_json(r))) for r in raw]
    text = {_text(k): _text(v) for k, v in scheduler.items()}
    schedule = [
        ScheduleInfo(job=s.job, every_s=s.every_s, last_at=_iso(s.last_at), next_at=_iso(s.next_at))
        for s in scheduled_jobs(text)
    ]
    return Jobs(jobs=list(JOBS), runs=runs, schedule=schedule)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class JobRequested(BaseModel):
    job: str
    request_id: str = Field(description="The scheduler's request stream id.")


@router.post(
    "/jobs/{job}",
    response_model=JobRequested,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask the scheduler to run a job now",
    responses=responses(*ADMIN_ERRORS, 404, 503),
)
async def trigger(job: JobName, state: State, admin: Writer) -> JobRequested:
    try:
        check_job(job)
    except ValueError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    keys = state.settings.keys

    async def add(client: AsyncRedis) -> str:
        return str(await client.xadd(keys.job_requests, {"job": job}, maxlen=10_000))

    request_id = await state.redis.run(add)
    audit.info("admin action", action="trigger", job=job, request=request_id, admin=admin.subject)
    return JobRequested(job=job, request_id=request_id)
