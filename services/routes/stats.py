"""Service statistics (visits, distinct workers, worker kinds, services used) per district,
subdistrict or station and per day or month, and the monthly report (HTML or CSV).

No `from __future__ import annotations` here: FastAPI reads the routes' annotations."""

import re
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from schemas.api import FieldError, Problem
from schemas.auth import Role
from schemas.visit_stats import StatsArea, StatsPeriod, VisitStatsList
from services.live import LiveHub
from services.monthly_report import ReportLanguage, report_csv, report_html
from services.problems import problem
from services.routes.deps import Caller
from services.routes.district_choice import one_district
from services.visit_stats import visit_stats

router = APIRouter(prefix="/v1/stats", tags=["statistics"])
DAY = r"^\d{4}-\d{2}-\d{2}$"
MONTH = r"^\d{4}-\d{2}$"
LAST_DAY = "31"  # days are compared as text: YYYY-MM-31 ends any month
ERRORS = {403: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}}


class ReportFormat(StrEnum):
    html = "html"
    csv = "csv"


@router.get("", response_model=VisitStatsList, responses=ERRORS)
def stats(
    who: Caller,
    request: Request,
    start: Annotated[str, Query(pattern=DAY, description="First day, YYYY-MM-DD")],
    end: Annotated[str, Query(pattern=DAY, description="Last day, YYYY-MM-DD")],
    district: str | None = None,
    period: StatsPeriod = StatsPeriod.day,
    by: StatsArea = StatsArea.subdistrict,
) -> VisitStatsList | JSONResponse:
    """Visits, workers served, distinct workers, worker kinds and services used, per `by`
    and `period` (days in the district's time zone), with the district's total."""
    who.require(Role.union, Role.planner)
    hub: LiveHub = request.app.state.live
    found = one_district(hub, who, district, "statistics are kept")
    if isinstance(found, JSONResponse):
        return found
    if end < start:
        return problem(
            422, "Invalid range", "end is before start", [FieldError(field="end", reason="< start")]
        )
    return visit_stats(hub.runtime.store, found, start, end, period, by)


@router.get(
    "/monthly-report",
    responses={**ERRORS, 200: {"content": {"text/html": {}, "text/csv": {}}}},
)
def monthly_report(
    who: Caller,
    request: Request,
    month: Annotated[str, Query(pattern=MONTH, description="YYYY-MM")],
    district: str | None = None,
    format: ReportFormat = ReportFormat.html,
    lang: ReportLanguage = ReportLanguage.zh,
) -> Response:
    """The month's report per subdistrict with the district's total, as a printable page or
    CSV (UTF-8 with a byte order mark, which Excel needs to read Chinese)."""
    who.require(Role.union, Role.planner)
    hub: LiveHub = request.app.state.live
    found = one_district(hub, who, district, "statistics are kept")
    if isinstance(found, JSONResponse):
        return found
    if not re.match(MONTH, month):
        return problem(422, "Invalid month", month, [FieldError(field="month", reason="YYYY-MM")])
    numbers = visit_stats(
        hub.runtime.store,
        found,
        f"{month}-01",
        f"{month}-{LAST_DAY}",
        StatsPeriod.month,
        StatsArea.subdistrict,
    )
    if format is ReportFormat.csv:
        name = f"waystation-{month}.csv"
        return Response(
            "\ufeff" + report_csv(numbers, lang),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return HTMLResponse(report_html(numbers, month, lang))
