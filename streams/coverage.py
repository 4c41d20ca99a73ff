"""Coverage by zone: station state changes fan out into per-zone deltas, and each zone keeps
its own slice of the coverage index, so zones can be partitioned across workers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field

from geo.coverage import CoverageIndex
from geo.demand import DemandLayer
from geo.grid import Grid
from schemas.state import CoverageDelta, StationStateChanged
from schemas.stations import StationState
from waystation.settings import Settings

COUNTING_STATES = frozenset({StationState.available, StationState.degraded})


@dataclass
class ZoneCoverage:
    """One zone's cells with their station counts, and the stations that reach into it."""

    zone: str
    index: CoverageIndex
    stations: dict[str, tuple[StationState, tuple[str, ...]]] = field(default_factory=dict)


@dataclass(frozen=True)
class ZoneAssessment:
    zone: str
    district: str | None
    demand_workers: float
    uncovered_demand_workers: float
    uncovered_cells: tuple[str, ...]
    stations_down: tuple[str, ...]  # not counting, and reaching an uncovered cell


def fan_out(
    change: StationStateChanged, catchment: frozenset[str], grid: Grid
) -> list[CoverageDelta]:
    """Split one station's change into a delta per zone its catchment touches."""
    by_zone: dict[str, list[str]] = defaultdict(list)
    for cell in catchment:
        by_zone[grid.zone_of(cell)].append(cell)
    return [
        CoverageDelta(
            zone=zone,
            station_id=change.station_id,
            cells=tuple(sorted(cells)),
            old=change.old,
            new=change.new,
            at=change.at,
        )
        for zone, cells in sorted(by_zone.items())
    ]


class ZoneCoverageBook:
    """Applies coverage deltas to zones and judges each zone against the demand it holds."""

    def __init__(
        self, zones: MutableMapping[str, ZoneCoverage], demand: DemandLayer, settings: Settings
    ) -> None:
        self.zones = zones
        self.demand = demand
        self.settings = settings

    def apply(self, delta: CoverageDelta) -> tuple[list[str], ZoneAssessment]:
        """Returns the cells whose covered flag flipped and the zone's new assessment."""
        zone = self.zones.get(delta.zone) or ZoneCoverage(
            zone=delta.zone, index=CoverageIndex(self.settings.degraded_coverage_weight)
        )
        known = zone.stations.get(delta.station_id)
        old = known[0] if known else None  # the zone's own memory beats the delta's claim
        flipped = zone.index.move(delta.cells, old, delta.new)
        zone.stations[delta.station_id] = (delta.new, delta.cells)
        self.zones[delta.zone] = zone  # reassign so a changelogged table records the change
        return flipped, self.assess(delta.zone)

    def assess(self, zone_id: str) -> ZoneAssessment:
        zone = self.zones.get(zone_id)
        threshold = self.settings.min_cell_demand_workers
        uncovered: list[str] = []
        total = missing = 0.0
        for cell in self.demand.cells_of_zone.get(zone_id, ()):
            cell_demand = self.demand.demand[cell]
            total += cell_demand
            if cell_demand >= threshold and (zone is None or not zone.index.is_covered(cell)):
                uncovered.append(cell)
                missing += cell_demand
        down: list[str] = []
        if zone is not None and uncovered:
            gap = set(uncovered)
            down = sorted(
                station_id
                for station_id, (state, cells) in zone.stations.items()
                if state not in COUNTING_STATES and gap.intersection(cells)
            )
        return ZoneAssessment(
            zone=zone_id,
            district=self.demand.district_of_zone.get(zone_id),
            demand_workers=round(total, 3),
            uncovered_demand_workers=round(missing, 3),
            uncovered_cells=tuple(uncovered),
            stations_down=tuple(down),
        )


def cell_coverage(zones: Mapping[str, ZoneCoverage], grid: Grid, cell: str) -> CoverageIndex | None:
    zone = zones.get(grid.zone_of(cell))
    return zone.index if zone is not None else None
