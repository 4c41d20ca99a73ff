"""Coverage history of a district or subdistrict, for trend charts (24 h, 7 d, 30 d).

No `from __future__ import annotations` here: FastAPI reads the routes' annotations."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from schemas.api import Problem
from schemas.auth import Role
from schemas.history import History, HistoryRange
from services.history import history
from services.live import LiveHub
from services.routes.deps import Caller
from services.routes.district_choice import one_district

router = APIRouter(prefix="/v1/history", tags=["history"])


@router.get(
    "",
    response_model=History,
    responses={403: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}},
)
def coverage_history(
    who: Caller,
    request: Request,
    district: str | None = None,
    subdistrict: str | None = None,
    range: HistoryRange = HistoryRange.day,
) -> History | JSONResponse:
    """Coverage share, uncovered demand, stations by state and open alerts over time: one
    point per 5 minutes for 24 h, hourly averages for 7 and 30 days. `district` may be left
    out by a key limited to one district."""
    who.require(Role.union, Role.planner)
    hub: LiveHub = request.app.state.live
    found = one_district(hub, who, district, "history is kept")
    if isinstance(found, JSONResponse):
        return found
    return history(hub.runtime.store, hub.settings, found, subdistrict, range, hub.data.clock.now())
