"""Siting and what-if on the live state of an embedded runtime: the processor is held still
while a scenario copies what it needs, and nothing is written back."""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np

from geo.access import supply_ratio
from geo.catchment import Catchments, CircleCatchments
from geo.demand import DemandLayer, check_demand_cells
from geo.grid import Grid
from geo.siting import CoverProblem, SitingResult, maximal_access, maximal_covering, set_covering
from geo.siting_exact import exact_maximal_covering
from schemas.api import ZoneGap
from schemas.geography import DemandCell
from schemas.planning import (
    Method,
    Network,
    Objective,
    ScenarioChanges,
    SitePick,
    SitingAnswer,
    SitingRequest,
    WhatIfDiff,
    ZoneChange,
)
from schemas.stations import Station, StationState
from streams.coverage import ZoneCoverage, ZoneCoverageBook
from streams.pipeline import Pipeline
from streams.scenario import Place, Scenario
from waystation.settings import Settings

PCT = 100.0
ROUND_WORKERS = 3
ROUND_ACCESS = 6


class PlanningError(ValueError):
    """A request a planner can fix: `field` names what is wrong and `reason` why."""

    def __init__(self, field: str, reason: str, status: int = 422) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class ZoneFacts:
    access_score: float  # demand-weighted mean 2SFCA access over the zone's cells
    stations_by_state: dict[StationState, int]


@dataclass(frozen=True)
class Candidate:
    """A site to choose from, in WGS84."""

    site_id: str
    lat: float
    lon: float
    name: str | None = None


@contextmanager
def collector_paused() -> Iterator[None]:
    """A full collection by the cyclic garbage collector walks the whole heap: with a city's
    coverage in memory that takes about a second (measured), and a scenario allocates enough
    to set one off. Planning makes no cycles that need collecting at once, so it pauses the
    collector while it runs; the next allocation after that may collect as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 1)


class LiveState(Protocol):
    """What planning reads of a runtime: the embedded runtime is one; a benchmark builds one
    in memory without a store."""

    settings: Settings
    registry: Mapping[str, Station] | None
    demand: DemandLayer
    zones: dict[str, ZoneCoverage]

    def reading(self) -> AbstractContextManager[Pipeline]: ...


class Planner:
    def __init__(self, runtime: LiveState) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    # shared ----------------------------------------------------------------------------------

    def _scenario(self, pipeline: Pipeline) -> Scenario:
        """A scenario on the live state (call with the runtime held still)."""
        registry = self.runtime.registry
        assert registry is not None, "start the runtime first"
        records = pipeline.ledger.records
        states = {
            sid: records[sid].state if sid in records else StationState.silent for sid in registry
        }
        places = {
            sid: Place(station.lat, station.lon, station.capacity)
            for sid, station in registry.items()
        }
        return Scenario.on_live(
            self.settings,
            self.runtime.demand,
            pipeline.catchments,
            self.runtime.zones,
            states,
            places,
            pipeline.stations.supply_ratios,
        )

    def station_district(self, station_id: str) -> str | None:
        registry = self.runtime.registry
        assert registry is not None
        return registry[station_id].district if station_id in registry else None

    def _check_station(self, field: str, station_id: str, district: str | None) -> None:
        found = self.station_district(station_id)
        if found is None:
            raise PlanningError(field, f"{station_id!r} is not a registered station")
        if district is not None and found != district:
            raise PlanningError(field, f"{station_id!r} is not a station of {district}")

    def check_place(self, field: str, lat: float, lon: float, district: str | None) -> None:
        """A proposed site must fall in the demand layer, and in `district` when given."""
        cell = self.runtime.demand.grid.cell_of(lat, lon)
        found = self.runtime.demand.district_of_cell.get(cell)
        if found is None:
            raise PlanningError(field, "is outside every district's demand layer")
        if district is not None and found != district:
            raise PlanningError(field, f"is in {found}, not in {district}")

    def _candidate_catchments(self, grid: Grid, travel_mode: str | None) -> Catchments | None:
        """Circles for the candidates, with a cache of their own: proposed sites must not
        pile up in the live cache (nor be computed in it from a request's thread). None for
        street-network catchments, which only the live model has."""
        if self.settings.catchment_model != "circle":
            return None
        mode = self.settings.model_copy(
            update={"travel_mode": travel_mode or self.settings.travel_mode}
        )
        return CircleCatchments(grid, mode.catchment_radius_m)

    def _cell_sites(self, uncovered: Mapping[str, float]) -> list[Candidate]:
        """The default candidates: the centre of every uncovered cell with demand that
        matters."""
        minimum = self.settings.min_cell_demand_workers
        return [
            Candidate(site_id=cell, lat=lat, lon=lon)
            for cell in sorted(uncovered)
            if uncovered[cell] >= minimum
            for lat, lon in [Grid.centre(cell)]
        ]

    def _mode_catchments(self, grid: Grid, travel_mode: str | None) -> Catchments | None:
        """Catchments for another travel mode than the live one; None when it is the same."""
        if travel_mode is None or travel_mode == self.settings.travel_mode:
            return None
        if self.settings.catchment_model != "circle":
            raise PlanningError("travel_mode", "is fixed by the street network catchment model")
        other = self.settings.model_copy(update={"travel_mode": travel_mode})
        return CircleCatchments(grid, other.catchment_radius_m)

    # what-if ---------------------------------------------------------------------------------

    def whatif(self, changes: ScenarioChanges, district: str | None, now: datetime) -> WhatIfDiff:
        """The changes applied to a copy of the live state, as a diff against now."""
        started = time.perf_counter()
        self._check_changes(changes, district)
        with collector_paused(), self.runtime.reading() as pipeline:
            live_demand = self.runtime.demand
            scenario = self._scenario(pipeline)
            self._apply(scenario, changes, live_demand)
            return self._diff(scenario, live_demand, pipeline.zone_book, district, now, started)

    def _check_changes(self, changes: ScenarioChanges, district: str | None) -> None:
        """Every station named must exist (and be in the district), every site be inside it,
        a demand layer be on the grid."""
        if changes.demand is not None:
            try:
                check_demand_cells(changes.demand, self.runtime.demand.grid.resolution)
            except ValueError as exc:
                raise PlanningError("changes.demand", str(exc)) from exc
        for i, station_id in enumerate(changes.close):
            self._check_station(f"changes.close[{i}]", station_id, district)
        for i, station_id in enumerate(changes.reopen):
            self._check_station(f"changes.reopen[{i}]", station_id, district)
        for station_id, seats in changes.seats.items():
            self._check_station(f"changes.seats.{station_id}", station_id, district)
            if seats < 1:
                raise PlanningError(f"changes.seats.{station_id}", "must be at least 1")
        if len(changes.open_sites) > self.settings.siting_max_sites:
            raise PlanningError(
                "changes.open_sites", f"has more than {self.settings.siting_max_sites} sites"
            )
        seen: set[str] = set()
        for i, site in enumerate(changes.open_sites):
            field = f"changes.open_sites[{i}]"
            if site.site_id in seen or self.station_district(site.site_id) is not None:
                raise PlanningError(f"{field}.site_id", f"{site.site_id!r} is already taken")
            seen.add(site.site_id)
            self.check_place(field, site.lat, site.lon, district)

    def _apply(self, scenario: Scenario, changes: ScenarioChanges, live: DemandLayer) -> None:
        """In order: demand, the full network, closures, reopenings, seats, new sites."""
        new_demand = self._changed_demand(changes, live)
        if new_demand is not None:
            scenario.rebuild(new_demand)
        if changes.network is Network.full:
            scenario.open_all()
        for station_id in changes.close:
            scenario.close(station_id)
        for station_id in changes.reopen:
            scenario.set_state(station_id, StationState.available)
        for station_id, seats in sorted(changes.seats.items()):
            scenario.set_seats(station_id, seats)
        for site in changes.open_sites:
            scenario.open_site(site.site_id, site.lat, site.lon, site.seats)

    def scenario_gaps(
        self, changes: ScenarioChanges, district: str | None
    ) -> tuple[list[ZoneGap], dict[str, ZoneFacts]]:
        """The gap report as it would be under the changes: zones ranked by uncovered demand,
        with each zone's access and stations by state, for the same exports as the live one."""
        self._check_changes(changes, district)
        with collector_paused(), self.runtime.reading() as pipeline:
            scenario = self._scenario(pipeline)
            self._apply(scenario, changes, self.runtime.demand)
            demand = scenario.demand
            gaps = []
            for zone in demand.zones_of_district(district):
                assessment = scenario.assess(zone)
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
                        alert_open=False,
                    )
                )
            gaps.sort(key=lambda g: (-g.uncovered_demand_workers, g.zone))
            by_zone: dict[str, Counter[StationState]] = {}
            for station_id, place in scenario.places.items():
                zone = demand.grid.zone_of(demand.grid.cell_of(place.lat, place.lon))
                state = scenario.states.get(station_id, StationState.silent)
                by_zone.setdefault(zone, Counter())[state] += 1
            facts = {}
            for gap in gaps:
                cells = demand.cells_of_zone.get(gap.zone, ())
                weight = sum(demand.demand[c] for c in cells)
                access = sum(demand.demand[c] * scenario.access(c) for c in cells)
                counts = by_zone.get(gap.zone, Counter())
                facts[gap.zone] = ZoneFacts(
                    access_score=round(access / weight, ROUND_ACCESS) if weight else 0.0,
                    stations_by_state={s: counts.get(s, 0) for s in StationState},
                )
        return gaps, facts

    def _changed_demand(self, changes: ScenarioChanges, live: DemandLayer) -> DemandLayer | None:
        if changes.demand is None and changes.demand_scale is None:
            return None
        cells = changes.demand
        if cells is None:
            cells = [
                DemandCell(
                    cell=cell,
                    demand_workers=workers,
                    district=live.district_of_cell[cell],
                    subdistrict=live.subdistrict_of_cell.get(cell),
                )
                for cell, workers in live.demand.items()
            ]
        scale = changes.demand_scale or 1.0
        scaled = [c.model_copy(update={"demand_workers": c.demand_workers * scale}) for c in cells]
        return DemandLayer.build(live.grid, scaled)

    def _diff(
        self,
        scenario: Scenario,
        live_demand: DemandLayer,
        live_book: ZoneCoverageBook,
        district: str | None,
        now: datetime,
        started: float,
    ) -> WhatIfDiff:
        after_demand = scenario.demand
        threshold = self.settings.zone_uncovered_demand_workers
        zones = sorted(
            set(live_demand.zones_of_district(district))
            | set(after_demand.zones_of_district(district))
        )
        changed_zones = set(zones) if scenario.rebuilt else scenario.touched_zones()
        zone_changes: list[ZoneChange] = []
        underserved_before = underserved_after = 0.0
        for zone in zones:
            before = live_book.assess(zone)
            after = scenario.assess(zone) if zone in changed_zones else before
            underserved_before += before.uncovered_demand_workers
            underserved_after += after.uncovered_demand_workers
            if after.uncovered_demand_workers != before.uncovered_demand_workers:
                zone_changes.append(
                    ZoneChange(
                        zone=zone,
                        district=after.district or before.district,
                        uncovered_before_workers=before.uncovered_demand_workers,
                        uncovered_after_workers=after.uncovered_demand_workers,
                        underserved_before=before.uncovered_demand_workers >= threshold,
                        underserved_after=after.uncovered_demand_workers >= threshold,
                    )
                )
        if scenario.rebuilt:
            cells = set(live_demand.cells_of_district(district)) | set(
                after_demand.cells_of_district(district)
            )
        else:
            cells = {
                c
                for c in scenario.touched_cells
                if c in live_demand.demand
                and (district is None or live_demand.district_of_cell[c] == district)
            }
        gained: list[str] = []
        lost: list[str] = []
        gained_workers = lost_workers = 0.0
        access_before = access_after = weight_before = weight_after = 0.0
        live_zones = self.runtime.zones
        for cell in sorted(cells):
            zone_before = live_zones.get(live_demand.grid.zone_of(cell))
            was = zone_before is not None and zone_before.index.is_covered(cell)
            now_covered = scenario.is_covered(cell)
            d_before = live_demand.demand.get(cell, 0.0)
            d_after = after_demand.demand.get(cell, 0.0)
            if zone_before is not None:
                access_before += d_before * zone_before.index.access(cell)
            weight_before += d_before
            access_after += d_after * scenario.access(cell)
            weight_after += d_after
            if now_covered and not was:
                gained.append(cell)
                gained_workers += d_after
            elif was and not now_covered:
                lost.append(cell)
                lost_workers += d_before
        return WhatIfDiff(
            district=district,
            generated_at=now,
            cells_gained=gained,
            cells_lost=lost,
            demand_gained_workers=round(gained_workers, ROUND_WORKERS),
            demand_lost_workers=round(lost_workers, ROUND_WORKERS),
            demand_workers_before=round(
                sum(live_demand.demand_of_zone.get(z, 0.0) for z in zones), ROUND_WORKERS
            ),
            demand_workers_after=round(
                sum(after_demand.demand_of_zone.get(z, 0.0) for z in zones), ROUND_WORKERS
            ),
            underserved_demand_before_workers=round(underserved_before, ROUND_WORKERS),
            underserved_demand_after_workers=round(underserved_after, ROUND_WORKERS),
            access_before=round(access_before / weight_before, ROUND_ACCESS)
            if weight_before
            else 0.0,
            access_after=round(access_after / weight_after, ROUND_ACCESS) if weight_after else 0.0,
            zones=zone_changes,
            zones_becoming_underserved=[
                z.zone for z in zone_changes if z.underserved_after and not z.underserved_before
            ],
            zones_no_longer_underserved=[
                z.zone for z in zone_changes if z.underserved_before and not z.underserved_after
            ],
            elapsed_ms=_ms(started),
        )

    # siting ----------------------------------------------------------------------------------

    def sites(
        self,
        request: SitingRequest,
        candidates: Sequence[Candidate] | None,
        now: datetime,
    ) -> SitingAnswer:
        """Suggested sites, in order, on the live state or the full network."""
        with collector_paused():
            return self._sites(request, candidates, now)

    def _sites(
        self, request: SitingRequest, candidates: Sequence[Candidate] | None, now: datetime
    ) -> SitingAnswer:
        started = time.perf_counter()
        settings = self.settings
        district = request.district
        if request.objective is not Objective.set_cover and not (
            1 <= request.k <= settings.siting_max_sites
        ):
            raise PlanningError("k", f"must be between 1 and {settings.siting_max_sites}")
        if request.method is Method.exact and request.objective is not Objective.coverage:
            raise PlanningError("method", "exact solving is offered for the coverage objective")
        for i, candidate in enumerate(candidates or ()):
            self.check_place(f"candidates[{i}]", candidate.lat, candidate.lon, district)
        with self.runtime.reading() as pipeline:
            demand = self.runtime.demand
            scenario = self._scenario(pipeline)
            other_mode = self._mode_catchments(demand.grid, request.travel_mode)
            if other_mode is not None:
                scenario.rebuild(demand, other_mode)
            if request.network is Network.full:
                scenario.open_all()
            district_cells = demand.cells_of_district(district)
            total = sum(demand.demand[c] for c in district_cells)
            uncovered = scenario.uncovered(district)
            access_now = (
                {c: scenario.access(c) for c in district_cells}
                if (request.objective is Objective.access)
                else {}
            )
            sites = list(candidates) if candidates is not None else self._cell_sites(uncovered)
            own = self._candidate_catchments(demand.grid, request.travel_mode)
            if own is None:  # street-network catchments: only the live model has them
                reach = scenario.catchments.many([(c.lat, c.lon) for c in sites])
        if own is not None:
            reach = own.many([(c.lat, c.lon) for c in sites])
        covered_before = total - sum(uncovered.values())
        candidates = sites
        if (
            request.method is Method.exact
            and len(candidates) > settings.siting_exact_max_candidates
        ):
            raise PlanningError(
                "method",
                f"exact solving takes at most {settings.siting_exact_max_candidates} candidates;"
                f" this problem has {len(candidates)}",
            )
        result = self._solve(request, uncovered, access_now, reach, demand, total, covered_before)
        remaining = dict(uncovered)
        picks = []
        covered = covered_before
        for rank, pick in enumerate(result.picks, start=1):
            candidate = candidates[pick.candidate]
            cells = reach[pick.candidate]
            covered += sum(remaining.pop(c, 0.0) for c in cells)
            picks.append(
                SitePick(
                    rank=rank,
                    site_id=candidate.site_id,
                    name=candidate.name,
                    lat=round(candidate.lat, 6),
                    lon=round(candidate.lon, 6),
                    added=round(pick.added, ROUND_ACCESS),
                    cumulative=round(pick.cumulative, ROUND_ACCESS),
                    cumulative_demand_covered_pct=round(PCT * covered / total, 2) if total else 0.0,
                    catchment_cells=sorted(c for c in cells if c in demand.demand),
                )
            )
        return SitingAnswer(
            district=district,
            objective=request.objective,
            network=request.network,
            method=request.method,
            generated_at=now,
            candidates=len(candidates),
            demand_workers=round(total, ROUND_WORKERS),
            demand_covered_before_workers=round(covered_before, ROUND_WORKERS),
            demand_covered_after_workers=round(covered, ROUND_WORKERS),
            reached_target=result.reached_target,
            picks=picks,
            elapsed_ms=_ms(started),
        )

    def _solve(
        self,
        request: SitingRequest,
        uncovered: dict[str, float],
        access_now: dict[str, float],
        reach: list[frozenset[str]],
        demand: DemandLayer,
        total: float,
        covered_before: float,
    ) -> SitingResult:
        settings = self.settings
        if request.objective is Objective.access:
            everything = {c: demand.demand[c] for c in access_now}
            problem = CoverProblem.build(everything, reach)
            ratios = np.array(
                [supply_ratio(request.seats, cells, demand.demand) for cells in reach]
            )
            level = np.array([access_now[c] for c in problem.cells])
            return maximal_access(
                problem, ratios, level, settings.siting_access_target_seats_per_worker, request.k
            )
        problem = CoverProblem.build(uncovered, reach)
        if request.objective is Objective.set_cover:
            needed = request.target_share * total - covered_before
            if needed <= 0:
                return SitingResult(picks=(), value=0.0, reached_target=True)
            return set_covering(problem, needed, limit=settings.siting_max_sites)
        if request.method is Method.exact:
            return exact_maximal_covering(problem, request.k)
        return maximal_covering(
            problem,
            request.k,
            swap_passes=settings.siting_swap_passes,
            perturbation_rounds=settings.siting_perturbation_rounds,
        )
