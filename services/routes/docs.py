"""The interactive API docs, served from vendored Swagger UI files (no CDN, so they work
offline and under the same strict Content-Security-Policy as everything else)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from services.routes.dashboard import STATIC_DIR

router = APIRouter(tags=["docs"])


@router.get("/docs", include_in_schema=False)
def api_docs() -> FileResponse:
    return FileResponse(STATIC_DIR / "docs.html", headers={"Cache-Control": "no-cache"})
