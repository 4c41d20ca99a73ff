"""A gap report as JSON, GeoJSON, CSV or a printable HTML page, chosen by `format=` or by the
Accept header. An Accept that names none of them is refused (406), never answered in JSON."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.responses import JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from geo.grid import Grid
from schemas.reports import Language, ReportFormat
from schemas.stations import StationState
from services.reports.gap_document import GapDocument
from services.reports.zone_map import zone_map

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CSV_BOM = "\ufeff"  # so that Excel reads the UTF-8 (Chinese names) as UTF-8
# The page is self-contained: its own inline styles, no scripts, nothing fetched.
HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


MEDIA_TYPES: dict[ReportFormat, str] = {
    ReportFormat.json: "application/json",
    ReportFormat.geojson: "application/geo+json",
    ReportFormat.csv: "text/csv; charset=utf-8",
    ReportFormat.html: "text/html; charset=utf-8",
}
_ACCEPTED: dict[str, ReportFormat] = {
    "application/json": ReportFormat.json,
    "application/*": ReportFormat.json,
    "*/*": ReportFormat.json,
    "application/geo+json": ReportFormat.geojson,
    "text/csv": ReportFormat.csv,
    "text/html": ReportFormat.html,
    "text/*": ReportFormat.html,
}


FORMAT_HELP = (
    "json, geojson (zones and underserved cells, WGS84), csv (one row per zone, UTF-8 with "
    "BOM) or html (printable page); without it the Accept header decides"
)
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report in the chosen format",
        "content": {media: {} for media in list(MEDIA_TYPES.values())[1:]},
    },
    404: {"description": "Unknown district or outline"},
    406: {"description": "The Accept header names no format a report comes in"},
}


class NotAcceptableError(ValueError):
    """The Accept header names no format a report comes in."""


def negotiate(chosen: ReportFormat | None, accept: str | None) -> ReportFormat:
    """`format=` wins; else the Accept header's most preferred format we make; no header
    (or */*) means JSON."""
    if chosen is not None:
        return chosen
    if not accept or not accept.strip():
        return ReportFormat.json
    ranked: list[tuple[float, int, str]] = []
    for order, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, order, media.lower()))
    for _, _, media in sorted(ranked):
        if media in _ACCEPTED:
            return _ACCEPTED[media]
    raise NotAcceptableError(accept)


def to_geojson(document: GapDocument) -> dict[str, Any]:
    """Zones (kind `zone`, with their outline) and their underserved cells (kind `cell`,
    hexagons), WGS84 as GeoJSON requires: QGIS opens it as it is."""
    features: list[dict[str, Any]] = []
    for row in document.rows:
        gap = row.gap
        features.append(
            {
                "type": "Feature",
                "id": gap.zone,
                "geometry": row.geometry,
                "properties": {
                    "kind": "zone",
                    "rank": row.rank,
                    "zone": gap.zone,
                    "name": row.name,
                    "district": gap.district,
                    "demand_workers": gap.demand_workers,
                    "uncovered_demand_workers": gap.uncovered_demand_workers,
                    "uncovered_cells": len(gap.uncovered_cells),
                    "access_score": row.access_score,
                    **{f"stations_{s.value}": n for s, n in row.stations_by_state.items()},
                    "stations_down": ",".join(gap.stations_down),
                    "alert_open": gap.alert_open,
                },
            }
        )
        features.extend(
            {
                "type": "Feature",
                "id": cell,
                "geometry": {"type": "Polygon", "coordinates": [Grid.outline_lonlat(cell)]},
                "properties": {"kind": "cell", "cell": cell, "zone": gap.zone},
            }
            for cell in gap.uncovered_cells
        )
    report = document.report
    return {
        "type": "FeatureCollection",
        "name": document.title,
        "district": report.district,
        "generated_at": report.generated_at.isoformat(),
        "features": features,
    }


CSV_COLUMNS = (
    "rank",
    "zone",
    "name",
    "district",
    "demand_workers",
    "uncovered_demand_workers",
    "uncovered_cells",
    "access_score",
    *(f"stations_{s.value}" for s in StationState),
    "stations_down",
    "alert_open",
)


def to_csv(document: GapDocument) -> bytes:
    """One row per zone, UTF-8 with a byte-order mark."""
    out = io.StringIO()
    out.write(CSV_BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in document.rows:
        gap = row.gap
        writer.writerow(
            [
                row.rank,
                gap.zone,
                row.name,
                gap.district or "",
                gap.demand_workers,
                gap.uncovered_demand_workers,
                len(gap.uncovered_cells),
                row.access_score,
                *(row.stations_by_state[s] for s in StationState),
                " ".join(gap.stations_down),
                "yes" if gap.alert_open else "no",
            ]
        )
    return out.getvalue().encode("utf-8")


TEXT: dict[Language, dict[str, str]] = {
    Language.zh_cn: {
        "title": "服务缺口报告",
        "whole_city": "全市",
        "generated": "生成时间",
        "zones": "缺口片区",
        "demand": "需求(人)",
        "uncovered": "未覆盖需求(人)",
        "uncovered_cells": "未覆盖网格",
        "access": "可达性(座位/人)",
        "stations": "驿站(可用/降级/关闭/失联)",
        "stations_down": "停摆驿站",
        "alert": "告警",
        "rank": "排名",
        "zone": "片区",
        "yes": "是",
        "no": "否",
        "map": "片区地图(颜色越深,未覆盖比例越高)",
        "none": "没有未覆盖的需求。",
    },
    Language.en: {
        "title": "Gap report",
        "whole_city": "Whole city",
        "generated": "Generated",
        "zones": "Zones with gaps",
        "demand": "Demand (workers)",
        "uncovered": "Uncovered demand (workers)",
        "uncovered_cells": "Uncovered cells",
        "access": "Access (seats per worker)",
        "stations": "Stations (available/degraded/closed/silent)",
        "stations_down": "Stations down",
        "alert": "Alert",
        "rank": "Rank",
        "zone": "Zone",
        "yes": "yes",
        "no": "no",
        "map": "Zones (darker: more of the demand uncovered)",
        "none": "No uncovered demand.",
    },
}

_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def to_html(document: GapDocument, language: Language) -> str:
    template = _ENVIRONMENT.get_template("gap_report.html")
    return template.render(
        doc=document,
        lang=language.value,
        t=TEXT[language],
        zone_map=zone_map(document.rows),
        states=list(StationState),
    )


def render(
    document: GapDocument, chosen: ReportFormat, language: Language = Language.zh_cn
) -> Response:
    """The document in one format; files other than JSON come as downloads named after it."""
    if chosen is ReportFormat.json:
        return JSONResponse(document.report.model_dump(mode="json"))
    stem = document.title.replace(" ", "-").replace("/", "-") or "gap-report"
    if chosen is ReportFormat.html:
        return Response(
            to_html(document, language),
            media_type=MEDIA_TYPES[chosen],
            headers={"Content-Security-Policy": HTML_POLICY, "Content-Language": language.value},
        )
    filename = quote(f"{stem}.{chosen.value}", safe="")
    body = (
        to_csv(document)
        if chosen is ReportFormat.csv
        else json.dumps(to_geojson(document), ensure_ascii=False).encode("utf-8")
    )
    return Response(
        body,
        media_type=MEDIA_TYPES[chosen],
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
    )
