"""The planner workbench's endpoints: siting suggestions, what-if scenarios (run, saved,
re-run, exported like a gap report), candidate files and signed report downloads."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from geo.crs import Datum, to_wgs84
from schemas.api import FieldError, GapReport, ImportProblem, ImportResponse, Problem
from schemas.auth import Role
from schemas.geography import BoundaryLevel
from schemas.planning import (
    SavedScenario,
    SavedScenarioList,
    SitingAnswer,
    SitingRequest,
    WhatIfDiff,
    WhatIfRequest,
)
from schemas.reports import MAX_ID, Language, Link, LinkRequest, ReportFormat
from services.auth import Principal
from services.candidate_file import CandidateFile, CandidateFileError, read_candidates
from services.geocoding import AddressLocator, GeocoderUnavailableError, Located
from services.problems import problem
from services.readings import GapArea, Readings
from services.report_links import LinkError, new_secret, sign, verify
from services.reports.gap_document import gap_document
from services.reports.gap_formats import REPORT_RESPONSES, render
from services.reports.gap_response import report_response
from services.routes.deps import Caller, running_system, scoped_district
from services.system import EmbeddedSystem
from streams.planner import Candidate, Planner, PlanningError

router = APIRouter(tags=["planning"])
PREFIX = "/v1/planning"
STATIC_DIR = FilePath(__file__).resolve().parent.parent / "static"

REFUSED = {
    403: {"model": Problem},
    404: {"model": Problem},
    422: {"model": Problem},
}


@router.get("/planner", include_in_schema=False)
def planner_page() -> FileResponse:
    """The planner workbench page; it signs in with a key like the dashboard."""
    return FileResponse(STATIC_DIR / "planner.html", headers={"Cache-Control": "no-cache"})


def planner_key(who: Caller) -> Principal:
    """A planner's (or an admin's) key."""
    who.require(Role.planner)
    return who


PlannerKey = Annotated[Principal, Depends(planner_key)]
ScenarioId = Annotated[int, Path(ge=1, le=MAX_ID, description="From /v1/planning/scenarios")]


def _refused(exc: PlanningError) -> JSONResponse:
    return problem(
        exc.status,
        "Invalid planning request",
        f"{exc.field}: {exc.reason}",
        [FieldError(field=exc.field, reason=exc.reason)],
    )


def _candidates(request: SitingRequest) -> list[Candidate] | None:
    if request.candidates is None:
        return None
    if not request.candidates:
        raise PlanningError("candidates", "is empty; leave it out to use uncovered cells")
    found = []
    for i, site in enumerate(request.candidates):
        if site.lat is None or site.lon is None:
            raise PlanningError(f"candidates[{i}]", "needs lat and lon (geocode addresses first)")
        lon, lat = to_wgs84(site.lon, site.lat, Datum(request.crs))
        found.append(
            Candidate(
                site_id=site.site_id or f"{lat:.6f},{lon:.6f}", lat=lat, lon=lon, name=site.name
            )
        )
    return found


@router.post(PREFIX + "/sites", response_model=SitingAnswer, responses=REFUSED)
async def sites(request: Request, body: SitingRequest, who: PlannerKey) -> Response:
    """Suggested sites for k new stations, in order, each with the demand it adds and the
    cumulative coverage (objective `coverage`); the fewest sites reaching `target_share`
    (`set_cover`); or the most capped 2SFCA access (`access`). On the live state (stations
    that are closed or silent do not count) or the full network (every station open)."""
    system = running_system(request)
    settings = system.settings
    try:
        body.district = scoped_district(Readings(system.runtime), who, body.district)
        if body.candidates is not None and len(body.candidates) > settings.siting_max_candidates:
            raise PlanningError(
                "candidates",
                f"has {len(body.candidates)} sites; the limit is {settings.siting_max_candidates}",
            )
        candidates = _candidates(body)
        answer = await run_in_threadpool(
            Planner(system.runtime).sites, body, candidates, system.clock.now()
        )
    except PlanningError as exc:
        return _refused(exc)
    return JSONResponse(answer.model_dump(mode="json"))


@router.post(
    PREFIX + "/candidates",
    response_model=ImportResponse,
    responses=REFUSED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/geo+json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def candidates(
    request: Request,
    who: PlannerKey,
    crs: Datum = Datum.wgs84,
    district: str | None = None,
) -> Response:
    """Read a candidate file (CSV with site_id, name, lat, lon, address; or GeoJSON points,
    GCJ-02/BD-09 converted with `crs`): the usable sites, and every other row with its
    reason. Addresses without coordinates are geocoded (WAYSTATION_GEOCODER); a site that
    found no match or lies outside the district is listed by row, never dropped silently.
    Post the sites to /v1/planning/sites as `candidates`."""
    system = running_system(request)
    body = await request.body()
    try:
        chosen = scoped_district(Readings(system.runtime), who, district)
        found = read_candidates(body, datum=crs, max_rows=system.settings.siting_max_candidates)
    except CandidateFileError as exc:
        return problem(
            422, "Unreadable candidate file", str(exc), [FieldError(field="body", reason=str(exc))]
        )
    except PlanningError as exc:
        return _refused(exc)
    placed = await run_in_threadpool(_place_candidates, system, found, chosen)
    if not placed.candidates:
        return problem(
            422,
            "No usable candidate sites",
            f"all {len(placed.errors)} rows were refused",
            [FieldError(field=f"[{e.row}].{e.field}", reason=e.reason) for e in placed.errors],
        )
    return JSONResponse(
        {
            "candidates": [c.model_dump(mode="json", exclude_none=True) for c in placed.candidates],
            "rejected": len(placed.errors),
            "errors": [e.model_dump(mode="json") for e in placed.errors],
        }
    )


def _place_candidates(
    system: EmbeddedSystem, found: CandidateFile, district: str | None
) -> CandidateFile:
    """Geocode the sites given by address, then keep those inside the district."""
    addresses = [c.address for c in found.candidates if c.lat is None and c.address]
    located: dict[str, Located] = {}
    failure = ""
    if addresses:
        try:
            located = AddressLocator(system.store, system.settings, system.clock).locate(addresses)
        except GeocoderUnavailableError as exc:
            failure = str(exc)
    planner = Planner(system.runtime)
    kept = CandidateFile(errors=list(found.errors))
    for row, site in zip(found.rows, found.candidates, strict=True):
        if site.lat is None or site.lon is None:
            answer = located.get((site.address or "").strip())
            if answer is None or not answer.found:
                reason = failure or "the geocoder found no match for this address"
                kept.errors.append(ImportProblem(row=row, field="address", reason=reason))
                continue
            site = site.model_copy(update={"lat": answer.lat, "lon": answer.lon})
        try:
            planner.check_place("site", site.lat or 0.0, site.lon or 0.0, district)
        except PlanningError as exc:
            kept.errors.append(ImportProblem(row=row, field="lat", reason=exc.reason))
            continue
        kept.candidates.append(site)
        kept.rows.append(row)
    kept.errors.sort(key=lambda e: (str(type(e.row)), e.row))
    return kept


def _save_scenario(
    system: EmbeddedSystem, body: WhatIfRequest, who: Principal, district: str | None
) -> int:
    with system.store.transaction() as tx:
        saved = tx.scenarios.save(
            body.name or "",
            district,
            body.changes,
            created_at=system.clock.now(),
            created_by=who.key.key_id,
        )
    return saved.scenario_id


@router.post(PREFIX + "/whatif", response_model=WhatIfDiff, responses=REFUSED)
async def whatif(request: Request, body: WhatIfRequest, who: PlannerKey) -> Response:
    """Close stations, open proposed sites, change seats, scale or replace demand: the
    coverage, access and underserved zones that would result, as a diff against now. Runs on
    a copy; the live state, alerts and stored tables are untouched. With `name` the scenario
    is saved for re-running."""
    system = running_system(request)
    try:
        district = scoped_district(Readings(system.runtime), who, body.district)
        diff = await run_in_threadpool(
            Planner(system.runtime).whatif, body.changes, district, system.clock.now()
        )
    except PlanningError as exc:
        return _refused(exc)
    scenario_id = _save_scenario(system, body, who, district) if body.name else None
    answer = diff.model_copy(update={"scenario_id": scenario_id})
    return JSONResponse(answer.model_dump(mode="json"))


@router.get(PREFIX + "/scenarios", response_model=SavedScenarioList)
def scenarios(request: Request, who: PlannerKey) -> SavedScenarioList:
    """Saved scenarios of the key's districts, newest first."""
    with running_system(request).store.transaction(readonly=True) as tx:
        return SavedScenarioList(scenarios=tx.scenarios.list(districts=who.district_scope()))


def _scenario(system: EmbeddedSystem, who: Principal, scenario_id: int) -> SavedScenario:
    with system.store.transaction(readonly=True) as tx:
        found = tx.scenarios.get(scenario_id)
    if found is None:
        raise PlanningError("scenario_id", f"no saved scenario {scenario_id}", status=404)
    scope = who.district_scope()
    if scope is not None and found.district not in scope:
        raise PlanningError(
            "scenario_id", f"scenario {scenario_id} belongs to another district", status=403
        )
    return found


@router.get(PREFIX + "/scenarios/{scenario_id}", response_model=SavedScenario, responses=REFUSED)
def scenario(request: Request, scenario_id: ScenarioId, who: PlannerKey) -> Response:
    try:
        found = _scenario(running_system(request), who, scenario_id)
    except PlanningError as exc:
        return _refused(exc)
    return JSONResponse(found.model_dump(mode="json"))


def _scenario_report(
    system: EmbeddedSystem, saved: SavedScenario, fmt: ReportFormat, lang: Language
) -> Response:
    readings = Readings(system.runtime)
    gaps, facts = Planner(system.runtime).scenario_gaps(saved.changes, saved.district)
    report = GapReport(district=saved.district, generated_at=system.clock.now(), zones=gaps)
    document = gap_document(readings, report, saved.name, facts)
    return render(document, fmt, lang)


@router.post(PREFIX + "/scenarios/{scenario_id}/run", response_model=WhatIfDiff, responses=REFUSED)
async def rerun(request: Request, scenario_id: ScenarioId, who: PlannerKey) -> Response:
    """A saved scenario against the live state as it is now."""
    system = running_system(request)
    try:
        saved = _scenario(system, who, scenario_id)
        diff = await run_in_threadpool(
            Planner(system.runtime).whatif, saved.changes, saved.district, system.clock.now()
        )
    except PlanningError as exc:
        return _refused(exc)
    answer = diff.model_copy(update={"scenario_id": scenario_id})
    return JSONResponse(answer.model_dump(mode="json"))


@router.get(
    PREFIX + "/scenarios/{scenario_id}/report", response_model=GapReport, responses=REPORT_RESPONSES
)
async def scenario_report(
    request: Request,
    scenario_id: ScenarioId,
    who: PlannerKey,
    format: ReportFormat = ReportFormat.json,
    lang: Language = Language.zh_cn,
) -> Response:
    """The gap report as it would be under a saved scenario, in any report format."""
    system = running_system(request)
    try:
        saved = _scenario(system, who, scenario_id)
        return await run_in_threadpool(_scenario_report, system, saved, format, lang)
    except PlanningError as exc:
        return _refused(exc)


def _link_secret(request: Request) -> bytes:
    secret: bytes | None = getattr(request.app.state, "report_link_secret", None)
    if secret is None:
        secret = request.app.state.report_link_secret = new_secret()
    return secret


@router.post(PREFIX + "/report-links", response_model=Link, responses=REFUSED)
def report_link(request: Request, body: LinkRequest, who: PlannerKey) -> Response:
    """A short-lived link to a gap report (or a saved scenario's) that a browser can open
    or save without the key: the dashboard's export buttons use it."""
    system = running_system(request)
    try:
        if body.scenario_id is not None:
            _scenario(system, who, body.scenario_id)
            district = None
        else:
            district = scoped_district(Readings(system.runtime), who, body.district)
    except PlanningError as exc:
        return _refused(exc)
    what: dict[str, Any] = body.model_dump(mode="json") | {"district": district}
    expires = system.clock.now() + timedelta(seconds=system.settings.report_link_ttl_seconds)
    token = sign(_link_secret(request), what, expires)
    link = Link(url=f"{PREFIX}/downloads/{token}", expires_at=expires)
    return JSONResponse(link.model_dump(mode="json"))


@router.get(
    PREFIX + "/downloads/{token}",
    responses=REPORT_RESPONSES | {403: {"description": "The link is malformed or expired"}},
)
async def download(request: Request, token: str) -> Response:
    """What a report link points to (no key: the link is the permission, for a few minutes)."""
    system = running_system(request)
    try:
        what = verify(_link_secret(request), token, system.clock.now())
    except LinkError as exc:
        return problem(403, "Invalid link", str(exc), [FieldError(field="token", reason=str(exc))])
    fmt, lang = ReportFormat(what["format"]), Language(what["lang"])
    if what.get("scenario_id") is not None:
        with system.store.transaction(readonly=True) as tx:
            saved = tx.scenarios.get(int(what["scenario_id"]))
        if saved is None:
            return problem(404, "Unknown scenario", "the scenario was removed")
        try:
            return await run_in_threadpool(_scenario_report, system, saved, fmt, lang)
        except PlanningError as exc:
            return _refused(exc)
    area = (
        GapArea(within=what["within"], level=BoundaryLevel(what["level"]))
        if what.get("within")
        else None
    )
    return await run_in_threadpool(
        report_response,
        Readings(system.runtime),
        system.clock.now(),
        what.get("district"),
        area,
        int(what["limit"]),
        fmt,
        lang,
        None,
    )
