"""Gap reports: zones ranked by uncovered demand, optionally narrowed to an area."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from schemas.api import FieldError, GapReport
from schemas.auth import Role
from schemas.geography import BoundaryLevel
from schemas.reports import Language, ReportFormat
from services.problems import problem
from services.readings import GapArea
from services.reports.gap_formats import FORMAT_HELP, REPORT_RESPONSES
from services.reports.gap_response import report_response
from services.routes.deps import MAX_PAGE, Caller, ReadingsDep, SystemDep, scoped_district

router = APIRouter(tags=["reports"])


@router.get("/v1/reports/gaps", response_model=GapReport, responses=REPORT_RESPONSES)
def gap_report(
    who: Caller,
    system: SystemDep,
    readings: ReadingsDep,
    district: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    within: Annotated[
        str | None, Query(description="Only cells meeting this loaded outline")
    ] = None,
    level: Annotated[
        BoundaryLevel, Query(description="Which outlines `within` names")
    ] = BoundaryLevel.district,
    lat: Annotated[float | None, Query(ge=-90, le=90, description="Centre of `radius_m`")] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    radius_m: Annotated[float, Query(gt=0, le=100_000)] = 1000.0,
    format: Annotated[ReportFormat | None, Query(description=FORMAT_HELP)] = None,
    lang: Language = Language.zh_cn,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> GapReport | Response:
    """Zones ranked by uncovered demand, with the stations whose state caused each gap.
    `within` (an outline) or `lat`+`lon`+`radius_m` (cells whose centre is in reach)
    narrow the report to an area; the store does that spatial filtering."""
    who.require(Role.union, Role.planner)
    district = scoped_district(readings, who, district)
    if (lat is None) != (lon is None):
        field = "lon" if lon is None else "lat"
        return problem(
            422,
            "Invalid request",
            "lat and lon go together",
            [FieldError(field=field, reason="is required when the other is given")],
        )
    if within is not None and lat is not None:
        return problem(
            422,
            "Invalid request",
            "ask for one area: within, or lat/lon/radius_m",
            [FieldError(field="within", reason="cannot be combined with lat/lon")],
        )
    area = None
    if within is not None:
        area = GapArea(within=within, level=level)
    elif lat is not None and lon is not None:
        area = GapArea(near=(lat, lon), radius_m=radius_m)
    return report_response(
        readings, system.clock.now(), district, area, limit, format, lang, accept
    )
