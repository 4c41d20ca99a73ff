"""One gap report, built once and rendered into every format.

The JSON answer stays the `GapReport` model; the other formats add what a planner needs on
paper or in QGIS (zone names and outlines, access, stations by state), all taken from the
same zones list so that every format tells the same numbers. A what-if scenario's report is
the same document built from the scenario instead of the live state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import h3

from geo.grid import Grid
from geo.zones import zone_name
from schemas.api import GapReport, ZoneGap
from schemas.geography import BoundaryLevel
from schemas.stations import StationState
from services.readings import GapArea, Readings
from services.station_tally import take_tally
from streams.planner import ZoneFacts

ACCESS_DECIMALS = 6


@dataclass(frozen=True)
class ZoneRow:
    """One ranked zone with what every format shows of it."""

    rank: int
    gap: ZoneGap
    name: str
    access_score: float  # demand-weighted mean 2SFCA access over the zone's cells
    stations_by_state: dict[StationState, int]
    geometry: dict[str, Any] | None  # GeoJSON, WGS84


@dataclass(frozen=True)
class GapDocument:
    report: GapReport
    title: str
    rows: list[ZoneRow]
    timezone: str = "UTC"  # the district's, for the times people read

    @property
    def generated_local(self) -> datetime:
        return self.report.generated_at.astimezone(ZoneInfo(self.timezone))

    @property
    def demand_workers(self) -> float:
        return round(sum(r.gap.demand_workers for r in self.rows), 3)

    @property
    def uncovered_demand_workers(self) -> float:
        return round(sum(r.gap.uncovered_demand_workers for r in self.rows), 3)

    @property
    def alerts_open(self) -> int:
        return sum(r.gap.alert_open for r in self.rows)


def gap_report(
    readings: Readings, now: datetime, district: str | None, area: GapArea | None, limit: int
) -> GapReport:
    """The one query behind every format: zones ranked by uncovered demand."""
    zones = readings.gaps(district, area)[:limit]
    tally = take_tally(readings.runtime)
    return GapReport(
        district=district,
        generated_at=now,
        zones=zones,
        stations_by_state=tally.stations_by_state(district),
        open_alerts_by_kind=tally.open_alerts_by_kind(district),
    )


def live_zone_facts(readings: Readings, report: GapReport) -> dict[str, ZoneFacts]:
    """Access and stations by state of the report's zones, from the live state."""
    runtime = readings.runtime
    stations = readings.stations(district=report.district, subdistrict=None, state=None)
    facts = {}
    with runtime.reading():
        grid = runtime.demand.grid
        by_zone: dict[str, Counter[StationState]] = {}
        for view in stations:
            zone = grid.zone_of(grid.cell_of(view.station.lat, view.station.lon))
            by_zone.setdefault(zone, Counter())[view.state] += 1
        for gap in report.zones:
            demand = weighted = 0.0
            for cell in runtime.demand.cells_of_zone.get(gap.zone, ()):
                view = runtime.coverage_map.view(cell)
                demand += view.demand_workers
                weighted += view.demand_workers * view.access_score
            counts = by_zone.get(gap.zone, Counter())
            facts[gap.zone] = ZoneFacts(
                access_score=round(weighted / demand, ACCESS_DECIMALS) if demand else 0.0,
                stations_by_state={state: counts.get(state, 0) for state in StationState},
            )
    return facts


def gap_document(
    readings: Readings, report: GapReport, title: str, facts: Mapping[str, ZoneFacts]
) -> GapDocument:
    """The report's zones with their names and outlines, and the given facts."""
    with readings.store.transaction(readonly=True) as tx:
        outlines = {
            zone_name(b): b.geometry for b in tx.boundaries.list(level=BoundaryLevel.subdistrict)
        }
    empty = ZoneFacts(access_score=0.0, stations_by_state=dict.fromkeys(StationState, 0))
    rows = []
    for rank, gap in enumerate(report.zones, start=1):
        parent, _, leaf = gap.zone.partition("/")
        known = facts.get(gap.zone, empty)
        rows.append(
            ZoneRow(
                rank=rank,
                gap=gap,
                name=leaf or parent,
                access_score=known.access_score,
                stations_by_state=known.stations_by_state,
                geometry=outlines.get(gap.zone) or _hexagon(gap.zone),
            )
        )
    return GapDocument(report=report, title=title, rows=rows, timezone=readings.settings.timezone)


def _hexagon(zone: str) -> dict[str, Any] | None:
    if not h3.is_valid_cell(zone):
        return None
    return {"type": "Polygon", "coordinates": [Grid.outline_lonlat(zone)]}
