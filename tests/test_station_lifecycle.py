"""Stations that move, resize, retire and come back: the live pipeline against a from-scratch
recomputation over the final registry and ledger."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import h3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.access import supply_ratio
from geo.catchment import CircleCatchments
from geo.coverage import CoverageIndex
from geo.demand import DemandLayer
from geo.grid import Grid
from schemas.events import CheckInEvent, CheckInPayload, CheckInStatus, EventType
from schemas.geography import DemandCell
from schemas.lifecycle import StationAction, StationChange
from schemas.state import StationRecord
from schemas.stations import Station
from streams.coverage import ZoneCoverage
from streams.pipeline import Pipeline
from tests.conftest import CENTRE, T0, make_station
from waystation.settings import Settings

GRID = Grid()
ORIGIN = GRID.cell_of(*CENTRE)
DEMAND = [
    DemandCell(cell=cell, demand_workers=float(1 + i % 5), district="D")
    for i, cell in enumerate(sorted(h3.grid_disk(ORIGIN, 12)))
]
STATION_IDS = [f"L-{i:02d}" for i in range(4)]
RADIUS_M = 500.0
CONFIG = Settings(
    degraded_coverage_weight=0.5,
    heartbeat_interval_seconds=300,
    silence_missed_heartbeats=2,
    min_access_seats_per_worker=0.05,
    zone_uncovered_demand_workers=10,
)
OFFSET = st.floats(-0.02, 0.02)  # degrees: stations wander over several zones
STEP = st.one_of(
    st.tuples(st.just("move"), st.sampled_from(STATION_IDS), OFFSET, OFFSET),
    st.tuples(st.just("seats"), st.sampled_from(STATION_IDS), st.integers(1, 60)),
    st.tuples(st.just("state"), st.sampled_from(STATION_IDS), st.sampled_from(list(CheckInStatus))),
    st.tuples(st.just("retire"), st.sampled_from(STATION_IDS)),
    st.tuples(st.just("reactivate"), st.sampled_from(STATION_IDS)),
    st.tuples(st.just("tick"), st.integers(1, 15)),
)


class Registry:
    """What the store's audit log does, in memory: a change with old and new, versioned."""

    def __init__(self, stations: dict[str, Station]) -> None:
        self.active = dict(stations)
        self.retired: dict[str, Station] = {}
        self.versions = dict.fromkeys(stations, 1)

    def change(self, station_id: str, new: Station | None, at: datetime) -> StationChange | None:
        old = self.active.get(station_id)
        if old is None and new is None:
            return None
        if old is None:
            action = StationAction.reactivated
            self.retired.pop(station_id, None)
        elif new is None:
            action = StationAction.retired
            self.retired[station_id] = old
        else:
            action = StationAction.updated
        self.versions[station_id] += 1
        if new is None:
            del self.active[station_id]
        else:
            self.active[station_id] = new
        return StationChange(
            change_id=uuid.uuid4(),
            station_id=station_id,
            version=self.versions[station_id],
            action=action,
            actor="test",
            at=at,
            old=old,
            new=new,
        )


def from_scratch(
    registry: dict[str, Station], records: dict[str, StationRecord], catchments: CircleCatchments
) -> CoverageIndex:
    """2SFCA and coverage over the final registry and ledger, with no history at all."""
    demand = {c.cell: c.demand_workers for c in DEMAND}
    index = CoverageIndex(CONFIG.degraded_coverage_weight)
    for station_id, record in sorted(records.items()):
        station = registry[station_id]
        cells = catchments.cells(station.lat, station.lon)
        ratio = supply_ratio(station.capacity, cells, demand)
        index.move(cells, None, record.state, supply_ratio=ratio)
    return index


def assert_zones_match(zones: dict[str, ZoneCoverage], expected: CoverageIndex) -> None:
    seen: set[str] = set()
    for zone_id, zone in zones.items():
        for cell in zone.index.cells():
            assert GRID.zone_of(cell) == zone_id
            assert cell not in seen
            seen.add(cell)
            assert zone.index.coverage(cell) == expected.coverage(cell), cell
            assert zone.index.access(cell) == pytest.approx(expected.access(cell), abs=1e-9)
    assert seen == set(expected.cells())


def check_in(station_id: str, at: datetime, status: CheckInStatus) -> CheckInEvent:
    return CheckInEvent(
        event_id=uuid.uuid4(),
        type=EventType.check_in,
        station_id=station_id,
        occurred_at=at,
        payload=CheckInPayload(status=status),
    )


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(STEP, max_size=30))
def test_any_lifecycle_sequence_equals_a_recomputation(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    catchments = CircleCatchments(GRID, RADIUS_M)
    stations = {
        sid: make_station(sid, CENTRE[0] + 0.004 * i, CENTRE[1] - 0.004 * i)
        for i, sid in enumerate(STATION_IDS)
    }
    registry = Registry(stations)
    live_registry: dict[str, Station] = dict(stations)
    records: dict[str, StationRecord] = {}
    zones: dict[str, ZoneCoverage] = {}
    pipeline = Pipeline(
        settings=CONFIG,
        demand=DemandLayer.build(GRID, DEMAND),
        registry=live_registry,
        catchments=catchments,
        records=records,
        zones=zones,
        alerts={},
        visits={},
    )
    now = T0
    pipeline.restore(now)
    for step in steps:
        now += timedelta(minutes=1)
        kind, *args = step
        change: StationChange | None = None
        if kind == "move":
            sid, dlat, dlon = args
            current = registry.active.get(sid)
            if current is not None:
                moved = current.model_copy(
                    update={"lat": CENTRE[0] + dlat, "lon": CENTRE[1] + dlon}
                )
                change = registry.change(sid, moved, now)
        elif kind == "seats":
            sid, seats = args
            current = registry.active.get(sid)
            if current is not None:
                change = registry.change(sid, current.model_copy(update={"capacity": seats}), now)
        elif kind == "retire":
            change = registry.change(args[0], None, now)
        elif kind == "reactivate":
            sid = args[0]
            if sid in registry.retired:
                change = registry.change(sid, registry.retired[sid], now)
        elif kind == "state":
            sid, status = args
            pipeline.handle(check_in(sid, now, status), now)
        else:
            now += timedelta(minutes=args[0])
            pipeline.tick(now)
        if change is not None:
            outcome = pipeline.change(change, now)
            assert outcome.registry_changes == [change]
        assert live_registry == registry.active
        assert set(records) <= set(registry.active)
        assert_zones_match(zones, from_scratch(registry.active, records, catchments))

    # Zone judgements too: a fresh pipeline restored from the final ledger agrees.
    fresh_zones: dict[str, ZoneCoverage] = {}
    fresh = Pipeline(
        settings=CONFIG,
        demand=DemandLayer.build(GRID, DEMAND),
        registry=dict(registry.active),
        catchments=catchments,
        records=dict(records),
        zones=fresh_zones,
        alerts={},
        visits={},
    )
    fresh.restore(now)
    for zone in GRID_ZONES:
        assert pipeline.zone_book.assess(zone) == fresh.zone_book.assess(zone), zone


GRID_ZONES = sorted({GRID.zone_of(c.cell) for c in DEMAND})


def test_a_move_reports_the_cells_it_uncovered_and_covered() -> None:
    catchments = CircleCatchments(GRID, RADIUS_M)
    station = make_station("M-1", *CENTRE)
    registry = {"M-1": station}
    pipeline = Pipeline(
        settings=CONFIG,
        demand=DemandLayer.build(GRID, DEMAND),
        registry=registry,
        catchments=catchments,
        records={},
        zones={},
        alerts={},
        visits={},
    )
    pipeline.restore(T0)
    pipeline.handle(check_in("M-1", T0, CheckInStatus.open), T0)
    before = catchments.cells(station.lat, station.lon)
    moved = station.model_copy(update={"lon": station.lon + 0.02})  # ~1.7 km east
    after = catchments.cells(moved.lat, moved.lon)
    change = StationChange(
        change_id=uuid.uuid4(),
        station_id="M-1",
        version=2,
        action=StationAction.updated,
        actor="test",
        at=T0,
        old=station,
        new=moved,
    )
    outcome = pipeline.change(change, T0)
    assert sorted(outcome.flipped_cells) == sorted(before ^ after)
    assert outcome.touched_cells == before | after
    assert all(pipeline.zone_book.zones[GRID.zone_of(c)].index.is_covered(c) for c in after)
