"""Coverage: the cells as GeoJSON, and the demand layer they are judged against."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from geo.demand import check_demand_cells
from schemas.api import CoverageResponse, DemandReplaced, Problem
from schemas.auth import Role
from schemas.geography import DemandCell
from services.problems import problem
from services.routes.deps import Caller, ReadingsDep, SystemDep, scoped_district

router = APIRouter(tags=["coverage"])


@router.get("/v1/coverage", response_model=CoverageResponse, responses={404: {"model": Problem}})
def coverage(who: Caller, readings: ReadingsDep, district: str | None = None) -> CoverageResponse:
    """Cells as GeoJSON with coverage count and status, and the district's summary."""
    who.require(Role.union, Role.planner)
    return readings.coverage(scoped_district(readings, who, district))


@router.put("/v1/demand", response_model=DemandReplaced, responses={422: {"model": Problem}})
def replace_demand(
    cells: list[DemandCell], who: Caller, system: SystemDep
) -> DemandReplaced | JSONResponse:
    """Replace the demand layer; coverage, access scores and zones are rebuilt on it."""
    who.require()
    try:
        check_demand_cells(cells, system.settings.grid_resolution)
    except ValueError as exc:
        return problem(422, "Invalid demand layer", str(exc))
    system.runtime.replace_demand(cells)
    return DemandReplaced(cells=len(cells), demand_workers=sum(c.demand_workers for c in cells))
