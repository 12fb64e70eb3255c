"""``GET /admin/governance``: the latest fairness audit and online/offline skew run."""

from __future__ import annotations

from fastapi import APIRouter

from api.admin import Governance, read_governance
from api.auth import ADMIN_ERRORS, AdminReader
from api.deps import State
from api.problems import responses

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get(
    "/governance",
    response_model=Governance,
    summary="The latest fairness audit and feature skew figures",
    responses=responses(*ADMIN_ERRORS, 503),
)
async def governance(state: State, admin: AdminReader) -> Governance:
    return await read_governance(state.redis, state.settings.keys)
