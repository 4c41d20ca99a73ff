"""The read side of live coverage: cells with their status, zone gaps and district totals,
computed from the zone books and the demand layer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from geo.coverage import CellCoverage
from geo.demand import DemandLayer
from schemas.api import CellStatus, ZoneGap
from streams.coverage import ZoneCoverage, ZoneCoverageBook


@dataclass(frozen=True)
class CellView:
    cell: str
    demand_workers: float
    coverage: CellCoverage
    access_score: float
    covered: bool
    status: CellStatus


class CoverageMap:
    def __init__(
        self, zones: Mapping[str, ZoneCoverage], demand: DemandLayer, book: ZoneCoverageBook
    ) -> None:
        self.zones = zones
        self.demand = demand
        self.book = book

    def cells(self, district: str | None) -> list[CellView]:
        return [self.view(cell) for cell in self.demand.cells_of_district(district)]

    def view(self, cell: str) -> CellView:
        """One demand cell as it stands now."""
        zone = self.zones.get(self.demand.grid.zone_of(cell))
        coverage = zone.index.coverage(cell) if zone else CellCoverage()
        covered = zone is not None and zone.index.is_covered(cell)
        access = zone.index.access(cell) if zone else 0.0
        cell_demand = self.demand.demand[cell]
        if self.book.is_underserved(zone, cell, cell_demand):
            status = CellStatus.underserved
        elif covered:
            status = CellStatus.covered
        else:
            status = CellStatus.uncovered
        return CellView(cell, cell_demand, coverage, access, covered, status)

    def gaps(self, district: str | None, open_zones: set[str]) -> list[ZoneGap]:
        """Zones with any uncovered demand, most uncovered demand first."""
        gaps = []
        for zone in self.demand.zones_of_district(district):
            assessment = self.book.assess(zone)
            if assessment.uncovered_demand_workers <= 0:
                continue
            gaps.append(
                ZoneGap(
                    zone=zone,
                    district=assessment.district,
                    demand_workers=assessment.demand_workers,
                    uncovered_demand_workers=assessment.uncovered_demand_workers,
                    uncovered_cells=list(assessment.uncovered_cells),
                    stations_down=list(assessment.stations_down),
                    alert_open=zone in open_zones,
                )
            )
        gaps.sort(key=lambda g: (-g.uncovered_demand_workers, g.zone))
        return gaps
