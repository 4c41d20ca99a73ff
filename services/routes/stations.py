"""Stations: listing and reading them with their live state, and the admin's import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from geo.crs import Datum
from schemas.api import FieldError, ImportResponse, Problem, StationList, StationView
from schemas.stations import StationState
from services.problems import problem
from services.routes.bodies import IMPORT_RESPONSES, json_body, one_or_many, read_import_body
from services.routes.deps import (
    MAX_PAGE,
    Caller,
    ReadingsDep,
    SettingsDep,
    StationImporterDep,
    SystemDep,
    check_district,
    readable_station,
)
from services.station_import import Crs

router = APIRouter(tags=["stations"])


@router.get("/v1/stations", response_model=StationList)
def list_stations(
    who: Caller,
    readings: ReadingsDep,
    district: str | None = None,
    subdistrict: str | None = None,
    state: StationState | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> StationList:
    """Stations with their live state; each key sees the stations in its scope."""
    check_district(readings, who, district)
    views = [
        view
        for view in readings.stations(district=district, subdistrict=subdistrict, state=state)
        if who.may_read_station(view.station.station_id, view.station.district)
    ]
    return StationList(total=len(views), stations=views[offset : offset + limit])


@router.get(
    "/v1/stations/{station_id}", response_model=StationView, responses={404: {"model": Problem}}
)
def get_station(
    station_id: str, who: Caller, system: SystemDep, readings: ReadingsDep
) -> StationView:
    station = readable_station(system, who, station_id)
    found = readings.stations(district=station.district, subdistrict=None, state=None)
    return next(v for v in found if v.station.station_id == station_id)


@router.post(
    "/v1/stations",
    response_model=ImportResponse,
    responses=IMPORT_RESPONSES,
    openapi_extra=json_body(one_or_many("StationImport")),
)
async def import_stations(
    request: Request,
    who: Caller,
    settings: SettingsDep,
    importer: StationImporterDep,
    crs: Crs = Crs.wgs84,
) -> Response:
    """Add or update stations (one object or an array). Each is judged on its own: bad
    ones are listed with field and reason, good ones stored. With district outlines
    loaded, a station outside every district is refused. A station may give `address`
    instead of `lat`/`lon`: it is geocoded (WAYSTATION_GEOCODER, cached), and a miss or a
    match outside its district is listed on `address`."""
    who.require()
    items, _ = await read_import_body(request, settings)
    result = await run_in_threadpool(importer.add, items, Datum(crs.value), actor=who.actor)
    if not result.imported and result.errors:
        first = result.errors[0]
        return problem(
            422,
            "Stations rejected",
            f"{first.field}: {first.reason}",
            [
                FieldError(field=f"[{e.row}]" + (f".{e.field}" if e.field else ""), reason=e.reason)
                for e in result.errors
            ],
        )
    return JSONResponse(result.model_dump(mode="json"))
