"""The read side of live coverage: cells with their status, zone gaps and district totals,
computed from the zone books and the demand layer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from geo.coverage import CellCoverage
from geo.demand import DemandLayer
from schemas.api import CellStatus, ZoneGap
from schemas.geography import CoverageCell
from streams.coverage import COUNTING_STATES, ZoneCoverage, ZoneCoverageBook
from streams.wire import ZoneSummary

SUMMARY_DECIMALS = 3  # workers: sums of demand, rounded so that summation order does not show


@dataclass(frozen=True)
class CellView:
    cell: str
    demand_workers: float
    coverage: CellCoverage
    access_score: float
    covered: bool
    status: CellStatus

    @property
    def coverage_count(self) -> int:
        """Stations within reach that count (available or degraded)."""
        return self.coverage.available + self.coverage.degraded

    @property
    def signature(self) -> tuple[int, CellStatus, float]:
        """What a saved snapshot of the cell holds: when it changes, the cell is saved again."""
        return self.coverage_count, self.status, round(self.access_score, 9)


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
        """One demand cell's live coverage."""
        zone = self.zones.get(self.demand.grid.zone_of(cell))
        if zone is None:
            coverage, covered, access = CellCoverage(), False, 0.0
        else:
            coverage, covered, access = zone.index.reach(cell)
        cell_demand = self.demand.demand[cell]
        if self.book.underserved_given(cell_demand, covered, access):
            status = CellStatus.underserved
        elif covered:
            status = CellStatus.covered
        else:
            status = CellStatus.uncovered
        return CellView(cell, cell_demand, coverage, access, covered, status)

    def snapshot(self, views: Iterable[CellView], at: datetime) -> list[CoverageCell]:
        """Cells as the store keeps them for planners."""
        return [
            CoverageCell(
                cell=view.cell,
                district=self.demand.district_of_cell[view.cell],
                subdistrict=self.demand.subdistrict_of_cell.get(view.cell),
                zone=self.demand.grid.zone_of(view.cell),
                demand_workers=view.demand_workers,
                coverage_count=view.coverage_count,
                access_score=max(0.0, view.access_score),
                status=view.status,
                updated_at=at,
            )
            for view in views
        ]

    def stations_down(self, zone_id: str, cells: Iterable[str]) -> list[str]:
        """Stations of the zone that do not count and reach one of `cells`."""
        zone = self.zones.get(zone_id)
        if zone is None:
            return []
        gap = set(cells)
        return sorted(
            station_id
            for station_id, known in zone.stations.items()
            if known.state not in COUNTING_STATES and gap.intersection(known.cells)
        )

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


def zone_summary(book: ZoneCoverageBook, zone_id: str) -> ZoneSummary:
    """One zone's coverage totals and gaps: what each zone partition publishes, and what the
    embedded runtime's maps add up to for the same zone."""
    zone = book.zones.get(zone_id)
    cells = book.demand.cells_of_zone.get(zone_id, ())
    covered = [c for c in cells if zone is not None and zone.index.is_covered(c)]
    assessment = book.assess(zone_id)
    return ZoneSummary(
        zone=zone_id,
        district=assessment.district,
        cells=len(cells),
        cells_covered=len(covered),
        demand_workers=assessment.demand_workers,
        demand_covered_workers=round(sum(book.demand.demand[c] for c in covered), SUMMARY_DECIMALS),
        uncovered_demand_workers=assessment.uncovered_demand_workers,
        uncovered_cells=assessment.uncovered_cells,
        stations_down=assessment.stations_down,
    )
