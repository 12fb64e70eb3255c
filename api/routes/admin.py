"""Admin: token, models (promote, roll back), jobs (runs, trigger), drift; actions are logged."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from api.admin import (
    DriftStatus,
    JobRequested,
    Jobs,
    ModelInfo,
    read_drift,
    read_jobs,
    registered_models,
    request_job,
)
from api.auth import (
    ADMIN_ERRORS,
    SCOPES,
    AdminReader,
    AdminWriter,
    login_failed,
    throttle_login,
)
from api.deps import State
from api.limits import require_json
from api.passwords import verify_secret
from api.problems import responses
from api.tokens import Claims, Token, issue_token
from batch.runs import KEEP_RUNS
from registry import MODEL_NAME_PATTERN, MlflowUnavailable, RegistryError, UnloadableModel
from schemas.jobs import check_job

router = APIRouter(prefix="/admin", tags=["admin"])
audit = structlog.get_logger("tillflow.api.audit")

ModelName = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description="e.g. `demand`.")]
JobName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]


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


@router.get(
    "/models",
    response_model=list[ModelInfo],
    summary="Registered models and versions",
    responses=responses(*ADMIN_ERRORS, 503),
)
async def models(state: State, admin: AdminReader) -> list[ModelInfo]:
    try:
        return await asyncio.to_thread(registered_models, state.registry, state.models)
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
async def promote(name: ModelName, request: Request, state: State, admin: AdminWriter) -> ModelInfo:
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
async def rollback(name: ModelName, state: State, admin: AdminWriter) -> ModelInfo:
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
    return next(
        m
        for m in await asyncio.to_thread(registered_models, state.registry, state.models)
        if m.name == name
    )


@router.get(
    "/drift",
    response_model=DriftStatus,
    summary="Drift detections and flow counters",
    responses=responses(*ADMIN_ERRORS, 503),
)
async def drift(state: State, admin: AdminReader) -> DriftStatus:
    return await read_drift(state.redis, state.settings.keys)


@router.get(
    "/jobs",
    response_model=Jobs,
    summary="Batch jobs and their latest runs",
    responses=responses(*ADMIN_ERRORS, 503),
)
async def jobs(
    state: State,
    admin: AdminReader,
    limit: Annotated[int, Query(ge=1, le=KEEP_RUNS)] = 50,
) -> Jobs:
    return await read_jobs(state.redis, state.settings.keys, limit)


@router.post(
    "/jobs/{job}",
    response_model=JobRequested,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask the scheduler to run a job now",
    responses=responses(*ADMIN_ERRORS, 404, 503),
)
async def trigger(job: JobName, state: State, admin: AdminWriter) -> JobRequested:
    try:
        check_job(job)
    except ValueError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    request_id = await request_job(state.redis, state.settings.keys, job)
    audit.info("admin action", action="trigger", job=job, request=request_id, admin=admin.subject)
    return JobRequested(job=job, request_id=request_id)
