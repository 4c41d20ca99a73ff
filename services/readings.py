"""What the read endpoints and the dashboard show, assembled from the live runtime and the
store in one place so that every view tells the same story."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from geo.grid import Grid
from schemas.alerts import AlertKind, AlertStatus
from schemas.api import CoverageResponse, CoverageSummary, StationView, ZoneGap
from schemas.events import EventType
from schemas.geography import AreaGap, BoundaryLevel
from schemas.reasons import NEVER_HEARD_FROM
from schemas.stations import StationState
from services.station_tally import take_tally
from streams.embedded import EmbeddedRuntime


class UnknownDistrictError(LookupError):
    pass


class UnknownBoundaryError(LookupError):
    pass


@dataclass(frozen=True)
class GapArea:
    """Where a gap report looks: cells whose hexagon meets a loaded outline (`within`), or
    cells whose centre is within `radius_m` of a point (`near`, lat/lon)."""

    within: str | None = None
    level: BoundaryLevel = BoundaryLevel.district
    near: tuple[float, float] | None = None
    radius_m: float = 1000.0


class Readings:
    def __init__(self, runtime: EmbeddedRuntime) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.settings = runtime.settings

    def check_district(self, district: str | None) -> None:
        if district is not None and district not in self.runtime.demand.districts:
            with self.store.transaction() as tx:
                if district not in tx.stations.districts():
                    raise UnknownDistrictError(district)

    def _station_ids(self, district: str | None) -> set[str] | None:
        if district is None:
            return None
        with self.store.transaction() as tx:
            return {s.station_id for s in tx.stations.list(district=district)}

    def _open_zone_alerts(self) -> set[str]:
        with self.runtime.reading() as pipeline:
            return {
                a.subject
                for a in pipeline.alert_book.alerts.values()
                if a.kind is AlertKind.zone_underserved and a.status is AlertStatus.open
            }

    def gaps(self, district: str | None, area: GapArea | None = None) -> list[ZoneGap]:
        """Zones ranked by uncovered demand. With an `area`, the store finds the cells in it
        (PostGIS spatial indexes in production) from the snapshot the runtime keeps there."""
        self.check_district(district)
        open_zones = self._open_zone_alerts()
        if area is None:
            with self.runtime.reading():
                return self.runtime.coverage_map.gaps(district, open_zones)
        found = self._area_gaps(area)
        with self.runtime.reading():
            owners = self.runtime.demand.district_of_zone
            coverage_map = self.runtime.coverage_map
            return [
                ZoneGap(
                    zone=gap.zone,
                    district=owners.get(gap.zone, gap.district),
                    demand_workers=gap.demand_workers,
                    uncovered_demand_workers=gap.uncovered_demand_workers,
                    uncovered_cells=list(gap.uncovered_cells),
                    stations_down=coverage_map.stations_down(gap.zone, gap.uncovered_cells),
                    alert_open=gap.zone in open_zones,
                )
                for gap in found
                if district is None or owners.get(gap.zone, gap.district) == district
            ]

    def _area_gaps(self, area: GapArea) -> list[AreaGap]:
        with self.store.transaction(readonly=True) as tx:
            if area.within is not None:
                if tx.boundaries.outline(area.within, level=area.level) is None:
                    raise UnknownBoundaryError(area.within, area.level)
                return tx.coverage.gaps_within_boundary(area.within, level=area.level)
            assert area.near is not None, "a gap area needs `within` or `near`"
            return tx.coverage.gaps_near(*area.near, area.radius_m)

    def summary(self, district: str | None) -> CoverageSummary:
        self.check_district(district)
        by_state = take_tally(self.runtime).stations_by_state(district)
        threshold = self.settings.zone_uncovered_demand_workers
        with self.runtime.reading():
            cells = self.runtime.coverage_map.cells(district)
        demand = sum(c.demand_workers for c in cells)
        covered = sum(c.demand_workers for c in cells if c.covered)
        underserved = [
            g
            for g in self.gaps(district)
            if g.alert_open or g.uncovered_demand_workers >= threshold
        ]
        return CoverageSummary(
            district=district,
            cells=len(cells),
            cells_covered=sum(c.covered for c in cells),
            demand_workers=round(demand, 1),
            demand_covered_workers=round(covered, 1),
            demand_covered_pct=round(100.0 * covered / demand, 2) if demand else 0.0,
            stations_by_state=by_state,
            underserved_zones=underserved,
        )

    def coverage(self, district: str | None) -> CoverageResponse:
        summary = self.summary(district)
        with self.runtime.reading():
            cells = self.runtime.coverage_map.cells(district)
        features: list[dict[str, Any]] = [
            {
                "type": "Feature",
                "id": view.cell,
                "geometry": {"type": "Polygon", "coordinates": [Grid.outline_lonlat(view.cell)]},
                "properties": {
                    "cell": view.cell,
                    "demand_workers": view.demand_workers,
                    "coverage_count": view.coverage.available + view.coverage.degraded,
                    "access_score": round(view.access_score, 6),
                    "stations_available": view.coverage.available,
                    "stations_degraded": view.coverage.degraded,
                    "stations_closed": view.coverage.closed,
                    "stations_silent": view.coverage.silent,
                    "status": view.status.value,
                },
            }
            for view in cells
        ]
        return CoverageResponse(features=features, summary=summary)

    def stations(
        self,
        *,
        district: str | None,
        subdistrict: str | None,
        state: StationState | None,
    ) -> list[StationView]:
        with self.store.transaction() as tx:
            stations = tx.stations.list(district=district, subdistrict=subdistrict)
        tally = take_tally(self.runtime)
        records = tally.records
        views = []
        for station in stations:
            record = records.get(station.station_id)
            view = StationView(
                station=station,
                state=tally.state_of(station.station_id),
                state_since=record.state_since if record else None,
                state_reason=record.state_reason if record else NEVER_HEARD_FROM.text(),
                state_cause=record.state_cause if record else NEVER_HEARD_FROM,
                last_heard_at=record.last_heard_at if record else None,
            )
            if state is None or view.state is state:
                views.append(view)
        return views

    def visits_today(self, district: str | None, now: datetime) -> int:
        zone = ZoneInfo(self.settings.timezone)
        midnight = datetime.combine(now.astimezone(zone).date(), time.min, tzinfo=zone)
        ids = self._station_ids(district)
        with self.store.transaction() as tx:
            return tx.events.count_by_type_since(
                midnight, type=EventType.visit.value, station_ids=ids
            )
