"""Station lifecycle over HTTP: update part of a station, retire it, reactivate it, and read
its audited history. Every write goes through the registry's audit log and is applied by the
processors at once (coverage, access, zones and alerts follow).

No `from __future__ import annotations` here: FastAPI reads the routes' annotations."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from geo.crs import Datum
from schemas.api import FieldError, Problem
from schemas.lifecycle import StationChange, StationChangeList
from services.problems import problem
from services.routes.deps import Caller, StationImporterDep, SystemDep
from services.station_files import ADDRESS_FIELD, COORDINATE_FIELDS
from services.station_import import Crs
from services.system import EmbeddedSystem

router = APIRouter(tags=["station lifecycle"])

FIXED_FIELDS = ("station_id",)  # a station's identity never changes; retire and create instead
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}
INVALID: dict[int | str, dict[str, Any]] = {422: {"model": Problem}}


def _not_found(station_id: str, what: str) -> JSONResponse:
    return problem(
        404,
        "Station not found",
        f"no {what} station {station_id!r}",
        [FieldError(field="station_id", reason=f"no {what} station with this id")],
    )


@router.patch(
    "/v1/stations/{station_id}", response_model=StationChange, responses=NOT_FOUND | INVALID
)
async def update_station(
    station_id: str,
    who: Caller,
    system: SystemDep,
    importer: StationImporterDep,
    changes: Annotated[dict[str, Any], Body(description="Station fields to change")],
    crs: Crs = Crs.wgs84,
) -> JSONResponse:
    """(admin) Change some fields of a station (location, seats, kind, amenities, hours...);
    the change is versioned with who and when, and moves the station's catchment live. An
    `address` without lat/lon moves the station to where that address is geocoded."""
    who.require()
    for name in FIXED_FIELDS:
        if name in changes and changes[name] != station_id:
            return problem(
                422,
                "Station rejected",
                f"{name}: cannot be changed",
                [FieldError(field=name, reason="cannot be changed")],
            )
    with system.store.transaction(readonly=True) as tx:
        current = tx.stations.get(station_id)
    if current is None:
        return _not_found(station_id, "active")
    merged = current.model_dump(mode="json") | changes
    if ADDRESS_FIELD in changes and not (changes.keys() & set(COORDINATE_FIELDS)):
        # Without the old coordinates the new address is geocoded, not ignored.
        merged = {k: v for k, v in merged.items() if k not in COORDINATE_FIELDS}
    if crs is not Crs.wgs84 and not ({"lat", "lon"} <= changes.keys()):
        return problem(
            422,
            "Station rejected",
            "lat: a datum other than wgs84 needs both lat and lon",
            [FieldError(field="lat", reason="give lat and lon together with crs")],
        )
    result = await run_in_threadpool(
        importer.add, [merged], Datum(crs.value), actor=who.actor, at=system.clock.now()
    )
    if result.errors:
        errors = [FieldError(field=e.field, reason=e.reason) for e in result.errors]
        first = errors[0]
        return problem(422, "Station rejected", f"{first.field}: {first.reason}", errors)
    with system.store.transaction(readonly=True) as tx:
        latest = tx.station_changes.latest(station_id)
    assert latest is not None
    return JSONResponse(latest.model_dump(mode="json"))


@router.post("/v1/stations/{station_id}/retire", response_model=StationChange, responses=NOT_FOUND)
async def retire_station(station_id: str, who: Caller, system: SystemDep) -> JSONResponse:
    """(admin) Take a station out of service for good: it leaves coverage and zones at once;
    its events are still archived, its history kept, and it can be reactivated."""
    who.require()
    return await run_in_threadpool(_lifecycle, system, station_id, who.actor, retire=True)


@router.post(
    "/v1/stations/{station_id}/reactivate", response_model=StationChange, responses=NOT_FOUND
)
async def reactivate_station(station_id: str, who: Caller, system: SystemDep) -> JSONResponse:
    """(admin) Bring a retired station back as it was when retired (silent until heard
    from)."""
    who.require()
    return await run_in_threadpool(_lifecycle, system, station_id, who.actor, retire=False)


def _lifecycle(system: EmbeddedSystem, station_id: str, actor: str, *, retire: bool) -> Any:
    at: datetime = system.clock.now()
    try:
        with system.store.transaction() as tx:
            log = tx.station_changes
            _, change = (log.retire if retire else log.reactivate)(station_id, actor=actor, at=at)
    except KeyError:
        return _not_found(station_id, "active" if retire else "retired")
    system.registry_changed()
    return JSONResponse(change.model_dump(mode="json"))


@router.get(
    "/v1/stations/{station_id}/changes", response_model=StationChangeList, responses=NOT_FOUND
)
def station_history(station_id: str, who: Caller, system: SystemDep) -> Any:
    """A station's audited changes, oldest first: version, action, who, when, old and new."""
    with system.store.transaction(readonly=True) as tx:
        history = tx.station_changes.history(station_id)
        current = tx.stations.get(station_id)
    last = current or (history[-1].new or history[-1].old if history else None)
    if last is None:
        return _not_found(station_id, "known")
    who.check_district(last.district)
    return StationChangeList(station_id=station_id, changes=history)
