"""Coverage by zone: station state changes fan out into per-zone deltas, and each zone keeps
its own slice of the coverage index, so zones can be partitioned across workers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from geo.coverage import CoverageIndex
from geo.demand import DemandLayer
from geo.grid import Grid
from schemas.state import CoverageDelta, StationStateChanged
from schemas.stations import StationState
from waystation.settings import Settings

COUNTING_STATES = frozenset({StationState.available, StationState.degraded})


@dataclass(frozen=True)
class ZoneStation:
    """What a zone remembers of a station that reaches into it."""

    state: StationState
    cells: tuple[str, ...]
    supply_ratio: float


@dataclass
class DownReach:
    """The zone's stations in a state that does not count (closed, silent...), and which of
    them reach an underserved cell, kept up to date as stations and cells change: an
    underserved zone's alert names them after every delta, and testing every down station's
    catchment against the gap each time was the zone stage's largest cost."""

    # Down station -> how many underserved cells of the zone it reaches.
    gap_cells: dict[str, int] = field(default_factory=dict)
    # Cell -> the down stations reaching it.
    by_cell: dict[str, set[str]] = field(default_factory=dict)
    in_gap: set[str] = field(default_factory=set)

    def __contains__(self, station_id: object) -> bool:
        return station_id in self.gap_cells

    def add(self, station_id: str, cells: Iterable[str], underserved: Mapping[str, float]) -> None:
        hits = 0
        for cell in cells:
            self.by_cell.setdefault(cell, set()).add(station_id)
            hits += cell in underserved
        self.gap_cells[station_id] = hits
        if hits:
            self.in_gap.add(station_id)

    def discard(self, station_id: str, cells: Iterable[str]) -> None:
        if self.gap_cells.pop(station_id, None) is None:
            return
        self.in_gap.discard(station_id)
        for cell in cells:
            reaching = self.by_cell.get(cell)
            if reaching is not None:
                reaching.discard(station_id)
                if not reaching:
                    del self.by_cell[cell]

    def gap_changed(self, cell: str, *, underserved: bool) -> None:
        """The cell joined the zone's underserved cells, or left them."""
        step = 1 if underserved else -1
        for station_id in self.by_cell.get(cell, ()):
            hits = self.gap_cells[station_id] + step
            self.gap_cells[station_id] = hits
            if hits:
                self.in_gap.add(station_id)
            else:
                self.in_gap.discard(station_id)

    def copy(self) -> DownReach:
        return DownReach(
            gap_cells=dict(self.gap_cells),
            by_cell={cell: set(ids) for cell, ids in self.by_cell.items()},
            in_gap=set(self.in_gap),
        )


@dataclass
class ZoneCoverage:
    """One zone's cells with their station counts, and the stations that reach into it."""

    zone: str
    index: CoverageIndex
    stations: dict[str, ZoneStation] = field(default_factory=dict)
    # Demand cells judged underserved, with their demand: kept up to date from the cells each
    # delta touches, so judging a zone never walks all of its cells. Derived: a zone loaded
    # from elsewhere (a changelog) comes unjudged and is judged whole on first use.
    underserved: dict[str, float] = field(default_factory=dict)
    # Derived like `underserved`.
    down: DownReach = field(default_factory=DownReach)
    judged: bool = False


@dataclass(frozen=True)
class ZoneAssessment:
    zone: str
    district: str | None
    demand_workers: float
    uncovered_demand_workers: float
    uncovered_cells: tuple[str, ...]
    stations_down: tuple[str, ...]  # not counting, and reaching an uncovered cell


def fan_out(
    change: StationStateChanged,
    catchment: frozenset[str],
    grid: Grid,
    supply_ratio: float,
    *,
    previous: frozenset[str] = frozenset(),
) -> list[CoverageDelta]:
    """Split one station's change into a delta per zone its catchment touches. A station
    whose catchment changed (it moved, or retired: an empty catchment) also sends an empty
    delta to each zone only its `previous` catchment reached, so that zone forgets it."""
    by_zone = dict(grid.by_zone(catchment))
    for cell in previous:
        by_zone.setdefault(grid.zone_of(cell), ())
    return [
        CoverageDelta(
            zone=zone,
            station_id=change.station_id,
            cells=cells,
            old=change.old,
            new=change.new,
            at=change.at,
            supply_ratio=float(supply_ratio),
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
        return self.move(delta), self.assess(delta.zone)

    def move(self, delta: CoverageDelta) -> list[str]:
        """`apply` without judging the zone afterwards (what-if scenarios judge once, at the
        end); returns the cells whose covered flag flipped."""
        zone = self._zone(delta.zone)
        known = zone.stations.get(delta.station_id)
        # The zone's own memory beats the delta's claim: replays and restarts stay exact.
        if known is not None and known.cells != delta.cells:
            flipped = self._relocate(zone, delta, known)
        elif not delta.cells:
            flipped = []  # leaving a zone it never reached
        else:
            flipped = zone.index.move(
                delta.cells,
                known.state if known else None,
                delta.new,
                supply_ratio=delta.supply_ratio,
                old_supply_ratio=known.supply_ratio if known else 0.0,
            )
            self._place(zone, delta)
            self._rejudge(zone, delta.cells if self._access_counts else flipped)
        self.zones[delta.zone] = zone  # reassign so a changelogged table records the change
        return flipped

    def _relocate(self, zone: ZoneCoverage, delta: CoverageDelta, known: ZoneStation) -> list[str]:
        """The station's catchment within the zone changed: out of its old cells, into its new
        ones (none: it left the zone). Flipped are the cells whose covered flag differs from
        before the move, so a cell in both catchments is not reported for the round trip."""
        touched = sorted(set(known.cells) | set(delta.cells))
        before = {cell: zone.index.is_covered(cell) for cell in touched}
        zone.index.move(known.cells, known.state, None, old_supply_ratio=known.supply_ratio)
        if delta.cells:
            zone.index.move(delta.cells, None, delta.new, supply_ratio=delta.supply_ratio)
            self._place(zone, delta)
        else:
            del zone.stations[delta.station_id]
            zone.down.discard(delta.station_id, known.cells)
        flipped = [cell for cell in touched if zone.index.is_covered(cell) != before[cell]]
        self._rejudge(zone, touched if self._access_counts else flipped)
        return flipped

    def load(self, deltas: Sequence[CoverageDelta]) -> list[str]:
        """A whole network's stations into the zones, as a restore brings them: each zone
        that holds no station yet gets its index built in one vectorised pass (a station's
        last delta wins, as moving it would end) instead of a move per station, and is judged
        whole on first use; a zone that already holds stations takes its deltas one by one.
        Returns the cells whose covered flag flipped."""
        arriving: dict[str, dict[str, ZoneStation]] = {}
        flipped: list[str] = []
        for delta in deltas:
            held = self.zones.get(delta.zone)
            if delta.zone not in arriving and held is not None and held.stations:
                flipped.extend(self.move(delta))
                continue
            stations = arriving.setdefault(delta.zone, {})
            if delta.cells:
                stations[delta.station_id] = ZoneStation(delta.new, delta.cells, delta.supply_ratio)
            else:
                stations.pop(delta.station_id, None)  # leaving a zone (none reached yet)
        weight = self.settings.degraded_coverage_weight
        for zone_id, stations in arriving.items():
            index = _index_of(stations.values(), weight)
            self.zones[zone_id] = ZoneCoverage(zone=zone_id, index=index, stations=stations)
            flipped.extend(index.covered_cells())
        return flipped

    @staticmethod
    def _place(zone: ZoneCoverage, delta: CoverageDelta) -> None:
        known = zone.stations.get(delta.station_id)
        zone.stations[delta.station_id] = ZoneStation(delta.new, delta.cells, delta.supply_ratio)
        was_down = known is not None and known.state not in COUNTING_STATES
        is_down = delta.new not in COUNTING_STATES
        if was_down and (not is_down or known.cells != delta.cells):
            zone.down.discard(delta.station_id, known.cells)
        if is_down and delta.station_id not in zone.down:
            zone.down.add(delta.station_id, delta.cells, zone.underserved)

    def _zone(self, zone_id: str) -> ZoneCoverage:
        """The zone's book, judged: new, or loaded without its derived judgement."""
        zone = self.zones.get(zone_id)
        if zone is None:
            index = CoverageIndex(self.settings.degraded_coverage_weight)
            zone = ZoneCoverage(zone=zone_id, index=index)
        if not zone.judged:
            self._judge_whole(zone)
            zone.down = DownReach()
            for station_id, known in zone.stations.items():
                if known.state not in COUNTING_STATES:
                    zone.down.add(station_id, known.cells, zone.underserved)
            zone.judged = True
        return zone

    def _judge_whole(self, zone: ZoneCoverage) -> None:
        """Every demand cell of the zone judged (a zone built or loaded whole), its index read
        for all of them in one pass rather than one lookup per cell: the same verdicts as
        `_rejudge` over them."""
        cells = self.demand.cells_of_zone.get(zone.zone, ())
        demand = np.array([self.demand.demand[cell] for cell in cells], np.float64)
        keys = np.fromiter((int(cell, 16) for cell in cells), np.int64, count=len(cells))
        covered, access = zone.index.covered_and_access_many(keys)
        settings = self.settings
        short = ~covered | (access < settings.min_access_seats_per_worker)
        underserved = (demand >= settings.min_cell_demand_workers) & short
        zone.underserved = {
            cells[i]: float(demand[i]) for i in np.flatnonzero(underserved).tolist()
        }

    @property
    def _access_counts(self) -> bool:
        """Whether a covered cell can be underserved for too little access. When not, a
        cell's verdict follows its covered flag alone, and only the cells a delta flipped
        need judging again, not every cell it reached."""
        return self.settings.min_access_seats_per_worker > 0

    def _rejudge(self, zone: ZoneCoverage, cells: Iterable[str]) -> None:
        demand = self.demand.demand
        for cell in cells:
            cell_demand = demand.get(cell)
            if cell_demand is None:
                continue  # reached, but outside the demand layer
            was = cell in zone.underserved
            if self.is_underserved(zone, cell, cell_demand):
                zone.underserved[cell] = cell_demand
                if not was:
                    zone.down.gap_changed(cell, underserved=True)
            elif was:
                del zone.underserved[cell]
                zone.down.gap_changed(cell, underserved=False)

    def is_underserved(self, zone: ZoneCoverage | None, cell: str, cell_demand: float) -> bool:
        """Demand that matters, and either no working station within reach or too little
        access (2SFCA) for it."""
        if cell_demand < self.settings.min_cell_demand_workers:
            return False
        if zone is None:
            return True
        covered, access = zone.index.covered_and_access(cell)
        return self.underserved_given(cell_demand, covered, access)

    def underserved_given(self, cell_demand: float, covered: bool, access: float) -> bool:
        """`is_underserved` of a cell whose coverage and access were already read."""
        if cell_demand < self.settings.min_cell_demand_workers:
            return False
        return not covered or access < self.settings.min_access_seats_per_worker

    def assess(self, zone_id: str, *, with_stations_down: bool = True) -> ZoneAssessment:
        """The zone's demand and gap; `stations_down` left empty unless asked for (it is the
        costly part, and only an alert's evidence needs it: see `stations_down`)."""
        zone = self._zone(zone_id)
        uncovered = sorted(zone.underserved)
        missing = sum(zone.underserved[cell] for cell in uncovered)
        total = self.demand.demand_of_zone.get(zone_id, 0.0)
        down = self.stations_down(zone_id) if with_stations_down else ()
        return ZoneAssessment(
            zone=zone_id,
            district=self.demand.district_of_zone.get(zone_id),
            demand_workers=round(total, 3),
            uncovered_demand_workers=round(missing, 3),
            uncovered_cells=tuple(uncovered),
            stations_down=down,
        )

    def stations_down(self, zone_id: str) -> tuple[str, ...]:
        """Stations of the zone in a state that does not count, reaching an underserved cell."""
        return tuple(sorted(self._zone(zone_id).down.in_gap))


def _index_of(stations: Iterable[ZoneStation], degraded_weight: float) -> CoverageIndex:
    """One zone's index over these stations, built in one pass."""
    placed = list(stations)
    sizes = [len(station.cells) for station in placed]
    cells = np.fromiter(
        (int(cell, 16) for station in placed for cell in station.cells),
        np.int64,
        count=sum(sizes),
    )
    return CoverageIndex.build(
        degraded_weight,
        owners=np.repeat(np.arange(len(placed), dtype=np.int64), sizes),
        cells=cells,
        states=[station.state for station in placed],
        supply_ratios=np.array([station.supply_ratio for station in placed], np.float64),
    )
