"""The admin's import of district and subdistrict outlines."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from geo.crs import Datum
from schemas.api import FieldError, ImportResponse
from schemas.geography import BoundaryLevel
from services.problems import problem
from services.routes.bodies import IMPORT_RESPONSES, json_body, read_import_body
from services.routes.deps import Caller, SystemDep
from services.station_files import StationFileError, boundaries_from_features
from services.station_import import Crs

router = APIRouter(tags=["boundaries"])

FEATURE_COLLECTION = {
    "type": "object",
    "description": "A GeoJSON FeatureCollection of (Multi)Polygons",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {"type": "array", "items": {"type": "object"}},
    },
}


@router.put(
    "/v1/boundaries",
    response_model=ImportResponse,
    responses=IMPORT_RESPONSES,
    openapi_extra=json_body(FEATURE_COLLECTION),
)
async def import_boundaries(
    request: Request,
    who: Caller,
    system: SystemDep,
    level: BoundaryLevel = BoundaryLevel.subdistrict,
    name_property: str = "name",
    parent: str | None = None,
    crs: Crs = Crs.wgs84,
) -> Response:
    """Replace the outlines of one level from a GeoJSON FeatureCollection, all or
    nothing. Subdistricts become the alert zones at the next start."""
    who.require()
    items, is_batch = await read_import_body(request, system.settings)
    document = items[0]
    if is_batch or document.get("type") != "FeatureCollection":
        return problem(
            422,
            "Not a FeatureCollection",
            "send a GeoJSON FeatureCollection of (Multi)Polygons",
            [FieldError(field="type", reason="must be FeatureCollection")],
        )
    features = document.get("features")
    if not isinstance(features, list):
        return problem(
            422,
            "No features",
            "the FeatureCollection has no features list",
            [FieldError(field="features", reason="must be an array")],
        )
    try:
        found = boundaries_from_features(
            features,
            source="body",
            level=level,
            name_property=name_property,
            parent=parent,
            datum=Datum(crs.value),
        )
    except StationFileError as exc:
        where, _, reason = str(exc).removeprefix("body: ").partition(": ")
        return problem(422, "Outlines rejected", str(exc), [FieldError(field=where, reason=reason)])
    with system.store.transaction() as tx:
        kept = [b for b in tx.boundaries.list() if b.level is not level]
        tx.boundaries.replace([*kept, *found])
    return JSONResponse(ImportResponse(imported=len(found), rejected=0, errors=[]).model_dump())
