"""Mobile units: the clock moves a bus along its stops, its catchment is live only at a stop
during the stop's hours, and a check-in's location overrides the schedule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import h3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.access import supply_ratio
from geo.catchment import CircleCatchments
from geo.coverage import CoverageIndex
from geo.demand import DemandLayer
from geo.grid import Grid
from schemas.events import (
    AmenityState,
    CheckInEvent,
    CheckInPayload,
    CheckInStatus,
    EventType,
    HealthCheckEvent,
    HealthCheckPayload,
)
from schemas.geography import DemandCell
from schemas.mobile import GeoPoint, MobileStop
from schemas.state import StationRecord
from schemas.stations import Amenity, Station, StationKind
from streams.coverage import ZoneCoverage
from streams.pipeline import Pipeline
from tests.conftest import CENTRE, make_station
from tests.test_station_lifecycle import assert_zones_match
from waystation.settings import Settings

BEIJING = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 23, tzinfo=BEIJING)  # a Monday
GRID = Grid()
RADIUS_M = 500.0
STOP_A = (CENTRE[0], CENTRE[1] - 0.02)
STOP_B = (CENTRE[0], CENTRE[1] + 0.02)
ELSEWHERE = (CENTRE[0] + 0.02, CENTRE[1])
DEMAND = [
    DemandCell(cell=c, demand_workers=2.0, district="D")
    for c in sorted(h3.grid_disk(GRID.cell_of(*CENTRE), 20))
]
CONFIG = Settings(heartbeat_interval_seconds=8 * 3600, degraded_coverage_weight=0.5)


def local(hour: float) -> datetime:
    return (DAY + timedelta(hours=hour)).astimezone(UTC)


def stop(name: str, at: tuple[float, float], start: float, end: float) -> MobileStop:
    return MobileStop(name=name, lat=at[0], lon=at[1], start=local(start), end=local(end))


def bus(*stops: MobileStop) -> Station:
    return make_station("BUS-1", *CENTRE, kind=StationKind.mobile_unit, stops=stops)


def pipeline_for(station: Station, records: dict[str, StationRecord] | None = None) -> Pipeline:
    return Pipeline(
        settings=CONFIG,
        demand=DemandLayer.build(GRID, DEMAND),
        registry={station.station_id: station},
        catchments=CircleCatchments(GRID, RADIUS_M),
        records={} if records is None else records,
        zones={},
        alerts={},
        visits={},
    )


def check_in(at: datetime, where: tuple[float, float] | None = None) -> CheckInEvent:
    location = GeoPoint(lat=where[0], lon=where[1]) if where else None
    return CheckInEvent(
        event_id=uuid.uuid4(),
        type=EventType.check_in,
        station_id="BUS-1",
        occurred_at=at,
        payload=CheckInPayload(status=CheckInStatus.open, location=location),
    )


def heartbeat(at: datetime) -> HealthCheckEvent:
    return HealthCheckEvent(
        event_id=uuid.uuid4(),
        type=EventType.health_check,
        station_id="BUS-1",
        occurred_at=at,
        payload=HealthCheckPayload(
            amenities={Amenity.drinking_water: AmenityState.ok}, next_check_in_seconds=8 * 3600
        ),
    )


def covered(pipeline: Pipeline) -> set[str]:
    return {
        c
        for z in pipeline.zone_book.zones.values()
        for c in z.index.cells()
        if z.index.is_covered(c)
    }


def cells_at(point: tuple[float, float]) -> frozenset[str]:
    return CircleCatchments(GRID, RADIUS_M).cells(*point)


def test_the_bus_serves_each_stop_in_its_hours_and_where_a_check_in_says() -> None:
    station = bus(stop("A", STOP_A, 9, 12), stop("B", STOP_B, 14, 17))
    pipeline = pipeline_for(station)
    pipeline.restore(local(8.5))
    pipeline.handle(check_in(local(8.75)), local(8.75))
    pipeline.handle(heartbeat(local(8.75)), local(8.75))
    assert pipeline.ledger.records["BUS-1"].state.value == "closed"
    assert pipeline.ledger.records["BUS-1"].state_reason == "between stops"
    assert covered(pipeline) == set()

    pipeline.tick(local(9))
    assert pipeline.ledger.records["BUS-1"].state.value == "available"
    assert covered(pipeline) == cells_at(STOP_A)

    closing = pipeline.tick(local(12))
    assert [c.new.value for c in closing.station_changes] == ["closed"]
    assert covered(pipeline) == set()

    moving = pipeline.tick(local(14))
    assert covered(pipeline) == cells_at(STOP_B)
    assert set(moving.flipped_cells) == cells_at(STOP_B)  # A's cells were uncovered already

    pipeline.handle(check_in(local(15), ELSEWHERE), local(15))  # the bus went elsewhere
    assert covered(pipeline) == cells_at(ELSEWHERE)
    assert pipeline.ledger.records["BUS-1"].placed == GeoPoint(lat=ELSEWHERE[0], lon=ELSEWHERE[1])
    pipeline.handle(check_in(local(15.5)), local(15.5))  # back on its schedule
    assert covered(pipeline) == cells_at(STOP_B)
    pipeline.tick(local(18))
    assert covered(pipeline) == set()


def test_stops_are_checked() -> None:
    with pytest.raises(ValueError, match="overlap"):
        bus(stop("A", STOP_A, 9, 12), stop("B", STOP_B, 11, 17))
    with pytest.raises(ValueError, match="end after it starts"):
        stop("A", STOP_A, 12, 9)
    with pytest.raises(ValueError, match="mobile_unit"):
        make_station("S-1", *CENTRE, stops=(stop("A", STOP_A, 9, 12),))
    ordered = bus(stop("B", STOP_B, 14, 17), stop("A", STOP_A, 9, 12))
    assert [s.name for s in ordered.stops] == ["A", "B"]


OFFSET = st.floats(-0.02, 0.02)
STEP = st.one_of(
    st.tuples(st.just("tick"), st.integers(10, 240)),
    st.tuples(st.just("check_in"), st.one_of(st.none(), st.tuples(OFFSET, OFFSET))),
    st.tuples(st.just("heartbeat")),
)


@settings(max_examples=60, deadline=None)
@given(
    hours=st.lists(st.tuples(st.integers(6, 20), st.integers(1, 3)), min_size=1, max_size=4),
    places=st.lists(st.tuples(OFFSET, OFFSET), min_size=4, max_size=4),
    steps=st.lists(STEP, max_size=25),
)
def test_a_bus_on_any_schedule_equals_a_recomputation(
    hours: list[tuple[int, int]],
    places: list[tuple[float, float]],
    steps: list[tuple],  # type: ignore[type-arg]
) -> None:
    stops, last_end = [], -1
    for (start, length), (dlat, dlon) in zip(sorted(hours), places, strict=False):
        start = max(start, last_end)
        stops.append(stop(f"S{start}", (CENTRE[0] + dlat, CENTRE[1] + dlon), start, start + length))
        last_end = start + length
    station = bus(*stops)
    records: dict[str, StationRecord] = {}
    pipeline = pipeline_for(station, records)
    now = local(5)
    pipeline.restore(now)
    for step in steps:
        kind, *args = step
        if kind == "tick":
            now += timedelta(minutes=args[0])
            pipeline.tick(now)
        elif kind == "check_in":
            where = (CENTRE[0] + args[0][0], CENTRE[1] + args[0][1]) if args[0] else None
            now += timedelta(minutes=1)
            pipeline.handle(check_in(now, where), now)
        else:
            now += timedelta(minutes=1)
            pipeline.handle(heartbeat(now), now)
        record = records["BUS-1"]
        point = record.placed or GeoPoint(lat=station.lat, lon=station.lon)
        cells = cells_at((point.lat, point.lon))
        index = CoverageIndex(CONFIG.degraded_coverage_weight)
        ratio = supply_ratio(station.capacity, cells, {c.cell: c.demand_workers for c in DEMAND})
        index.move(cells, None, record.state, supply_ratio=ratio)
        zones: dict[str, ZoneCoverage] = pipeline.zone_book.zones  # type: ignore[assignment]
        assert_zones_match(zones, index)
        at_stop = any(s.start <= now < s.end for s in station.stops)
        if record.state.value == "available":
            assert at_stop or record.check_in_location is not None


def test_a_read_replica_follows_the_bus_from_the_records_alone() -> None:
    """The distributed runtime's API keeps coverage from the records the workers store: a
    record that places the bus elsewhere moves the replica's coverage too."""
    station = bus(stop("A", STOP_A, 9, 12), stop("B", STOP_B, 14, 17))
    driver = pipeline_for(station)
    replica = pipeline_for(station)
    driver.restore(local(8.5))
    replica.restore(local(8.5))
    driver.handle(check_in(local(8.75)), local(8.75))
    driver.handle(heartbeat(local(8.75)), local(8.75))
    for hour in (9, 12, 14, 15):
        if hour == 15:
            driver.handle(check_in(local(hour), ELSEWHERE), local(hour))
        else:
            driver.tick(local(hour))
        replica.adopt(driver.ledger.records["BUS-1"], local(hour))
        assert covered(replica) == covered(driver), hour
        for zone_id, zone in driver.zone_book.zones.items():
            mirror = replica.zone_book.zones[zone_id]
            assert sorted(mirror.index.cells()) == sorted(zone.index.cells())
            assert all(
                mirror.index.access(c) == pytest.approx(zone.index.access(c))
                for c in zone.index.cells()
            )
