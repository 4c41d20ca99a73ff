"""The gap report endpoint's answer: the one query, in the format asked for."""

from __future__ import annotations

from datetime import datetime

from fastapi.responses import JSONResponse, Response

from schemas.api import FieldError
from schemas.reports import Language, ReportFormat
from services.problems import problem
from services.readings import GapArea, Readings
from services.reports.gap_document import gap_document, gap_report, live_zone_facts
from services.reports.gap_formats import MEDIA_TYPES, NotAcceptableError, negotiate, render


def report_title(district: str | None, area: GapArea | None, whole_city: str) -> str:
    title = district or whole_city
    if area is not None and area.within:
        title = area.within
    elif area is not None and area.near:
        lat, lon = area.near
        title = f"{title} ({lat:.5f}, {lon:.5f}, {area.radius_m:g} m)"
    return title


def report_response(
    readings: Readings,
    now: datetime,
    district: str | None,
    area: GapArea | None,
    limit: int,
    chosen: ReportFormat | None,
    language: Language,
    accept: str | None,
) -> Response:
    try:
        fmt = negotiate(chosen, accept)
    except NotAcceptableError:
        return problem(
            406,
            "Not acceptable",
            "a gap report comes as " + ", ".join(MEDIA_TYPES.values()),
            [FieldError(field="Accept", reason="names no format a gap report comes in")],
        )
    report = gap_report(readings, now, district, area, limit)
    if fmt is ReportFormat.json:
        return JSONResponse(report.model_dump(mode="json"))
    whole_city = "全市" if language is Language.zh_cn else "Whole city"
    title = report_title(district, area, whole_city)
    document = gap_document(readings, report, title, live_zone_facts(readings, report))
    return render(document, fmt, language)
