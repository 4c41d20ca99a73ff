"""What-if scenarios on a copy of the live coverage: the live zone books are read, never
written; a zone is copied the first time a scenario touches it, and the changes go through the
same `ZoneCoverageBook` the processors use, so a scenario judges cells and zones exactly as
the live system would.

Only what a change reaches is copied and recomputed (closing 100 stations of a city touches
their catchments' zones), except a new demand layer or another travel mode, which change
every station's catchment or supply ratio and so rebuild coverage whole, still on copies."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from geo.access import supply_ratio
from geo.catchment import Catchments
from geo.coverage import CoverageIndex
from geo.demand import DemandLayer
from schemas.state import CoverageDelta
from schemas.stations import StationState
from streams.coverage import COUNTING_STATES, ZoneAssessment, ZoneCoverage, ZoneCoverageBook
from waystation.settings import Settings


def copy_zone(zone: ZoneCoverage) -> ZoneCoverage:
    """A zone book that can be changed without changing the original. Its index shares the
    per-cell count lists: `CopiedZones.own_cells` unshares those a change is about to touch
    (a zone holds thousands of cells; a change touches a catchment's worth)."""
    index = zone.index.copy()
    return ZoneCoverage(
        zone=zone.zone,
        index=index,
        stations=dict(zone.stations),
        underserved=dict(zone.underserved),
        down=zone.down.copy(),
        judged=zone.judged,
    )


class CopiedZones(MutableMapping[str, ZoneCoverage]):
    """Zones read through to `live`, copied on first access and kept here after that."""

    def __init__(self, live: Mapping[str, ZoneCoverage] | None) -> None:
        self.live: Mapping[str, ZoneCoverage] = live if live is not None else {}
        self.own: dict[str, ZoneCoverage] = {}
        self._owned_cells: dict[str, set[str]] = {}

    def own_cells(self, zone_id: str, cells: Iterable[str]) -> None:
        """Give the copy of a live zone its own count lists for `cells`, which CoverageIndex
        changes in place; a zone the scenario made itself owns all of its lists already."""
        if zone_id not in self.live:
            return
        owned = self._owned_cells.setdefault(zone_id, set())
        fresh = [cell for cell in cells if cell not in owned]
        self[zone_id].index.unshare(fresh)
        owned.update(fresh)

    def __getitem__(self, zone_id: str) -> ZoneCoverage:
        found = self.own.get(zone_id)
        if found is None:
            found = self.own[zone_id] = copy_zone(self.live[zone_id])
        return found

    def __setitem__(self, zone_id: str, zone: ZoneCoverage) -> None:
        self.own[zone_id] = zone

    def __delitem__(self, zone_id: str) -> None:
        raise TypeError("a scenario never removes zones")

    def __iter__(self) -> Iterator[str]:
        return iter(set(self.live) | set(self.own))

    def __len__(self) -> int:
        return len(set(self.live) | set(self.own))


@dataclass(frozen=True)
class Place:
    """Where a station or a proposed site is, and what it offers."""

    lat: float
    lon: float
    seats: int


@dataclass
class Scenario:
    """Coverage as it would be after some changes. Start one with `Scenario.on_live`."""

    settings: Settings
    demand: DemandLayer
    catchments: Catchments
    zones: CopiedZones
    states: dict[str, StationState]  # the scenario's state of every known station
    places: dict[str, Place]
    ratios: dict[str, float]
    touched_cells: set[str] = field(default_factory=set)
    rebuilt: bool = False

    def __post_init__(self) -> None:
        self.book = ZoneCoverageBook(self.zones, self.demand, self.settings)

    @classmethod
    def on_live(
        cls,
        settings: Settings,
        demand: DemandLayer,
        catchments: Catchments,
        live_zones: Mapping[str, ZoneCoverage],
        states: Mapping[str, StationState],
        places: Mapping[str, Place],
        ratios: Mapping[str, float],
    ) -> Scenario:
        """`states` and `places`: every registered station; `ratios`: the supply ratios the
        live processors use (computed here for any station they have not used yet)."""
        return cls(
            settings=settings,
            demand=demand,
            catchments=catchments,
            zones=CopiedZones(live_zones),
            states=dict(states),
            places=dict(places),
            ratios=dict(ratios),
        )

    # changes ------------------------------------------------------------------------------

    def _ratio(self, station_id: str, cells: frozenset[str]) -> float:
        ratio = self.ratios.get(station_id)
        if ratio is None:
            ratio = supply_ratio(self.places[station_id].seats, cells, self.demand.demand)
            self.ratios[station_id] = ratio
        return ratio

    def _move(self, station_id: str, new: StationState, *, ratio: float | None = None) -> None:
        """Send one station's catchment through the zone books, as the processors would."""
        place = self.places[station_id]
        cells = self.catchments.cells(place.lat, place.lon)
        new_ratio = self._ratio(station_id, cells) if ratio is None else ratio
        by_zone: dict[str, list[str]] = {}
        for cell in cells:
            by_zone.setdefault(self.demand.grid.zone_of(cell), []).append(cell)
        for zone_id, zone_cells in sorted(by_zone.items()):
            self.zones.own_cells(zone_id, zone_cells)
            known = self.zones[zone_id].stations.get(station_id) if zone_id in self.zones else None
            if known is not None:
                self.zones.own_cells(zone_id, known.cells)
            delta = CoverageDelta(
                zone=zone_id,
                station_id=station_id,
                cells=tuple(sorted(zone_cells)),
                old=self.states.get(station_id),
                new=new,
                at=_EPOCH,
                supply_ratio=new_ratio,
            )
            self.book.move(delta)
        self.touched_cells |= cells
        self.ratios[station_id] = new_ratio
        self.states[station_id] = new

    def set_state(self, station_id: str, state: StationState) -> None:
        if station_id not in self.places:
            raise KeyError(station_id)
        if self.states.get(station_id) is not state:
            self._move(station_id, state)

    def close(self, station_id: str) -> None:
        self.set_state(station_id, StationState.closed)

    def open_all(self) -> None:
        """The full network: every registered station counts as available."""
        for station_id in sorted(self.places):
            if self.states.get(station_id) not in COUNTING_STATES:
                self.set_state(station_id, StationState.available)

    def set_seats(self, station_id: str, seats: int) -> None:
        place = self.places[station_id]
        self.places[station_id] = Place(place.lat, place.lon, seats)
        cells = self.catchments.cells(place.lat, place.lon)
        ratio = supply_ratio(seats, cells, self.demand.demand)
        state = self.states.get(station_id, StationState.silent)
        self._move(station_id, state, ratio=ratio)

    def open_site(self, site_id: str, lat: float, lon: float, seats: int) -> None:
        """A new station at a proposed site, available from the start."""
        if site_id in self.places:
            raise ValueError(f"{site_id} is already a station or a site")
        self.places[site_id] = Place(lat, lon, seats)
        self._move(site_id, StationState.available)

    def rebuild(self, demand: DemandLayer, catchments: Catchments | None = None) -> None:
        """Coverage from scratch on another demand layer (or catchments): every station's
        supply ratio depends on the demand its catchment holds."""
        self.demand = demand
        self.catchments = catchments or self.catchments
        self.zones = CopiedZones(None)
        self.book = ZoneCoverageBook(self.zones, demand, self.settings)
        states, self.states = self.states, {}
        self.ratios = {}
        self.catchments.many([(p.lat, p.lon) for p in self.places.values()])
        for station_id in sorted(states):
            self._move(station_id, states[station_id])
        self.rebuilt = True

    # reading ------------------------------------------------------------------------------

    def assess(self, zone_id: str) -> ZoneAssessment:
        return self.book.assess(zone_id)

    def zone_index(self, zone_id: str) -> CoverageIndex | None:
        """A zone's coverage as the scenario has it (its copy, else the live one)."""
        zone = self.zones.own.get(zone_id) or self.zones.live.get(zone_id)
        return zone.index if zone is not None else None

    def uncovered(self, district: str | None) -> dict[str, float]:
        """Demand of the district's cells that no counting station covers, zone by zone
        (one index per zone, not a zone lookup per cell: a city has 200,000 cells)."""
        demand = self.demand
        found: dict[str, float] = {}
        for zone_id, cells in demand.cells_of_zone.items():
            index = self.zone_index(zone_id)
            for cell in cells:
                workers = demand.demand[cell]
                if workers <= 0 or (
                    district is not None and demand.district_of_cell[cell] != district
                ):
                    continue
                if index is None or not index.is_covered(cell):
                    found[cell] = workers
        return found

    def is_covered(self, cell: str) -> bool:
        zone = self.zones.own.get(self.demand.grid.zone_of(cell))
        if zone is None:
            zone = self.zones.live.get(self.demand.grid.zone_of(cell))
        return zone is not None and zone.index.is_covered(cell)

    def access(self, cell: str) -> float:
        zone_id = self.demand.grid.zone_of(cell)
        zone = self.zones.own.get(zone_id) or self.zones.live.get(zone_id)
        return zone.index.access(cell) if zone is not None else 0.0

    def touched_zones(self) -> set[str]:
        return set(self.zones.own)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # deltas carry a time; a scenario has none
