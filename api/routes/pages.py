"""The pages: storefront (``/``), pricing (``/pricing``) and admin (``/admin``), plain HTML + JS."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

PAGES = Path(__file__).resolve().parents[1] / "pages"
ASSETS = {"tillflow.css", "common.js", "storefront.js", "pricing.js", "admin.js"}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def storefront() -> FileResponse:
    return FileResponse(PAGES / "storefront.html")


@router.get("/pricing")
async def pricing_page() -> FileResponse:
    return FileResponse(PAGES / "pricing.html")


@router.get("/admin")
async def admin_page() -> FileResponse:
    return FileResponse(PAGES / "admin.html")


@router.get("/static/{name}")
async def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no asset {name!r}")
    return FileResponse(PAGES / name, headers={"Cache-Control": "no-cache"})
