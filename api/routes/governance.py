"""``GET /admin/governance``: the latest fairness audit and online/offline skew run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import State
from api.problems import responses
from api.routes.admin import ADMIN_ERRORS, Reader
from infra.clients import AsyncRedis
from schemas.governance import AUDIT_FIELD, SKEW_FIELD, AuditSummary, SkewSummary

router = APIRouter(prefix="/admin", tags=["admin"])


class Governance(BaseModel):
    audit: AuditSummary | None = Field(
        description="The latest `tillflow batch audit` (null before the first)."
    )
    skew: SkewSummary | None = Field(
        description="The latest `tillflow batch skew` (null before the first)."
    )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@router.get(
    "/governance",
    response_model=Governance,
    summary="The latest fairness audit and feature skew figures",
    responses=responses(*ADMIN_ERRORS, 503),
)
async def governance(state: State, admin: Reader) -> Governance:
    keys = state.settings.keys

    async def read(client: AsyncRedis) -> dict[Any, Any]:
        found: dict[Any, Any] = await client.hgetall(keys.governance)  # type: ignore[misc]
        return found

    raw = {_text(k): v for k, v in (await state.redis.run(read)).items()}
    audit, skew = raw.get(AUDIT_FIELD), raw.get(SKEW_FIELD)
    return Governance(
        audit=None if audit is None else AuditSummary.model_validate_json(audit),
        skew=None if skew is None else SkewSummary.model_validate_json(skew),
    )
