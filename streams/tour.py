"""A mobile unit's tour, read from live state: where it serves now, what comes next, and which
stops add the most demand no other working station reaches. Read only: nothing here writes
into the live state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from geo.coverage import CoverageIndex
from schemas.mobile import GeoPoint, MobileStop, next_stops, stop_at
from schemas.stations import Station
from streams.coverage import ZoneCoverageBook
from streams.pipeline import StationSteps

COVERED_AT = 1.0  # a cell is covered at one available station (CoverageIndex)
COVERAGE_SLACK = 1e-9  # float leftovers of weighted sums


@dataclass(frozen=True)
class StopGain:
    stop: MobileStop
    uncovered_demand_workers: float  # demand it reaches that no other working station does
    cells: int


@dataclass(frozen=True)
class Tour:
    position: GeoPoint
    current_stop: MobileStop | None
    upcoming: tuple[MobileStop, ...]
    serving_cells: tuple[str, ...]  # the catchment where it is now (empty when not counting)
    gains: tuple[StopGain, ...]  # every stop, most uncovered demand first


def tour_of(
    station: Station,
    steps: StationSteps,
    book: ZoneCoverageBook,
    now: datetime,
    *,
    upcoming: int,
) -> Tour:
    record = steps.ledger.records.get(station.station_id)
    own = steps.catchment(station)
    weight = 0.0
    if record is not None:
        weight = CoverageIndex(steps.settings.degraded_coverage_weight).weight(record.state)
    gains = [_gain(stop, own, weight, steps, book) for stop in station.stops]
    return Tour(
        position=steps.position(station),
        current_stop=stop_at(station.stops, now),
        upcoming=next_stops(station.stops, now, upcoming),
        serving_cells=tuple(sorted(own)) if weight else (),
        gains=tuple(sorted(gains, key=lambda g: (-g.uncovered_demand_workers, g.stop.start))),
    )


def _gain(
    stop: MobileStop,
    own: frozenset[str],
    own_weight: float,
    steps: StationSteps,
    book: ZoneCoverageBook,
) -> StopGain:
    """The demand at a stop that nobody else covers: the unit's own present contribution is
    taken out, so its current stop is judged like the others."""
    cells = steps.catchments.cells(stop.lat, stop.lon)
    demand = book.demand.demand
    minimum = book.settings.min_cell_demand_workers
    gain = 0.0
    for cell in cells:
        cell_demand = demand.get(cell, 0.0)
        if cell_demand < minimum or cell_demand <= 0.0:
            continue
        zone = book.zones.get(book.demand.grid.zone_of(cell))
        effective = zone.index.effective(cell) if zone is not None else 0.0
        if cell in own:
            effective -= own_weight
        if effective < COVERED_AT - COVERAGE_SLACK:
            gain += cell_demand
    return StopGain(stop=stop, uncovered_demand_workers=round(gain, 3), cells=len(cells))
