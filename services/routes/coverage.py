"""Coverage: the cells as GeoJSON, and the demand layer they are judged against."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from geo.demand import check_demand_cells
from schemas.api import CoverageResponse, DemandReplaced, FieldError, Problem
from schemas.auth import Role
from schemas.geography import DemandCell
from services.problems import problem
from services.routes.bodies import IMPORT_RESPONSES, json_body, read_import_body
from services.routes.deps import Caller, ReadingsDep, SystemDep, scoped_district

router = APIRouter(tags=["coverage"])


@router.get("/v1/coverage", response_model=CoverageResponse, responses={404: {"model": Problem}})
def coverage(who: Caller, readings: ReadingsDep, district: str | None = None) -> CoverageResponse:
    """Cells as GeoJSON with coverage count and status, and the district's summary."""
    who.require(Role.union, Role.planner)
    return readings.coverage(scoped_district(readings, who, district))


@router.put(
    "/v1/demand",
    response_model=DemandReplaced,
    responses=IMPORT_RESPONSES,
    openapi_extra=json_body(
        {"type": "array", "items": {"$ref": "#/components/schemas/DemandCell"}}
    ),
)
async def replace_demand(request: Request, who: Caller, system: SystemDep) -> Response:
    """Replace the demand layer; coverage, access scores and zones are rebuilt on it. All or
    nothing: a layer with holes would misreport coverage, so every bad cell is listed and
    none is stored."""
    who.require()
    items, is_batch = await read_import_body(request, system.settings)
    if not is_batch:
        return problem(
            422,
            "Invalid demand layer",
            "send a JSON array of demand cells",
            [FieldError(field="", reason="must be an array")],
        )
    cells, errors = validate_demand_cells(items)
    if errors:
        return problem(422, "Invalid demand layer", f"{len(errors)} problem(s)", errors)
    try:
        check_demand_cells(cells, system.settings.grid_resolution)
    except ValueError as exc:
        return problem(422, "Invalid demand layer", str(exc))
    await run_in_threadpool(system.replace_demand, cells)
    replaced = DemandReplaced(cells=len(cells), demand_workers=sum(c.demand_workers for c in cells))
    return JSONResponse(replaced.model_dump(mode="json"))


def validate_demand_cells(items: list[Any]) -> tuple[list[DemandCell], list[FieldError]]:
    """Each item on its own, so that every bad cell is named with its index and field."""
    cells: list[DemandCell] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        try:
            cells.append(DemandCell.model_validate(item))
        except ValidationError as exc:
            errors.extend(
                FieldError(
                    field=".".join([f"[{index}]", *(str(p) for p in e["loc"])]), reason=e["msg"]
                )
                for e in exc.errors(include_url=False)
            )
    return cells, errors
