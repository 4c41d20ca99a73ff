"""Mobile units over HTTP: where a unit serves now, its next stops, and which stops of its tour
add the most demand no other working station reaches (for planners choosing stops).

No `from __future__ import annotations` here: FastAPI reads the routes' annotations."""

from typing import Any

from fastapi import APIRouter

from schemas.api import FieldError
from schemas.mobile import StopGainView, TourView
from services.problems import problem
from services.routes.deps import Caller, SystemDep
from services.routes.stations_lifecycle import NOT_FOUND
from streams.tour import tour_of

router = APIRouter(tags=["mobile units"])

UPCOMING_STOPS = 5  # next stops shown; the ranking covers the whole tour


@router.get("/v1/stations/{station_id}/tour", response_model=TourView, responses=NOT_FOUND)
def station_tour(station_id: str, who: Caller, system: SystemDep) -> Any:
    """(union, planner, admin) A mobile unit's position, next stops and the area it serves
    now, and every stop ranked by the uncovered demand it would serve."""
    runtime = system.runtime
    with runtime.reading() as pipeline:
        station = pipeline.registry.get(station_id)
        if station is None or not station.mobile:
            return problem(
                404,
                "Not a mobile unit",
                f"no active mobile unit {station_id!r}",
                [FieldError(field="station_id", reason="no active station of kind mobile_unit")],
            )
        who.check_district(station.district)
        tour = tour_of(
            station,
            pipeline.stations,
            pipeline.zone_book,
            system.clock.now(),
            upcoming=UPCOMING_STOPS,
        )
    return TourView(
        station_id=station_id,
        position=tour.position,
        serving_now=bool(tour.serving_cells),
        current_stop=tour.current_stop,
        next_stops=list(tour.upcoming),
        serving_cells=list(tour.serving_cells),
        stops_by_gain=[
            StopGainView(
                stop=g.stop, uncovered_demand_workers=g.uncovered_demand_workers, cells=g.cells
            )
            for g in tour.gains
        ],
    )
