"""The incremental coverage index against a from-scratch recount, and the zone-partitioned
coverage book (and the pipeline driving it) against a single index."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import h3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.access import supply_ratio
from geo.catchment import CircleCatchments
from geo.coverage import CellCoverage, CoverageIndex
from geo.demand import DemandLayer
from geo.grid import Grid
from schemas.events import (
    AmenityState,
    CheckInEvent,
    CheckInPayload,
    CheckInStatus,
    Event,
    EventType,
    HealthCheckEvent,
    HealthCheckPayload,
)
from schemas.geography import DemandCell
from schemas.state import StationRecord, StationStateChanged
from schemas.stations import Amenity, StationState
from streams.coverage import COUNTING_STATES, ZoneCoverage, ZoneCoverageBook, fan_out
from streams.pipeline import Pipeline
from tests.conftest import make_station
from waystation.settings import Settings

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
CENTRE = (39.95, 116.48)
GRID = Grid()
ORIGIN = GRID.cell_of(*CENTRE)
SMALL_POOL = sorted(h3.grid_disk(ORIGIN, 2))  # 19 cells
WIDE_POOL = sorted(h3.grid_disk(ORIGIN, 7))  # 169 cells over several zones
STATES = [None, *StationState]
RATIOS = st.one_of(st.just(0.0), st.floats(0.001, 5.0))


Stations = dict[str, tuple[StationState | None, frozenset[str]]]


def recount(stations: Stations) -> dict[str, CellCoverage]:
    counts: dict[str, Counter[StationState]] = {}
    for state, cells in stations.values():
        if state is None:
            continue
        for cell in cells:
            counts.setdefault(cell, Counter())[state] += 1
    return {
        cell: CellCoverage(
            available=c[StationState.available],
            degraded=c[StationState.degraded],
            closed=c[StationState.closed],
            silent=c[StationState.silent],
        )
        for cell, c in counts.items()
    }


def covered(coverage: CellCoverage, weight: float) -> bool:
    return coverage.available + weight * coverage.degraded >= 1


def access_sum(stations: Stations, ratios: dict[str, float], weight: float, cell: str) -> float:
    """2SFCA step two from scratch: the weighted supply ratios of the stations reaching cell."""
    factor = {StationState.available: 1.0, StationState.degraded: weight}
    return sum(
        factor.get(state, 0.0) * ratios[station_id]  # type: ignore[arg-type]
        for station_id, (state, cells) in stations.items()
        if cell in cells
    )


@st.composite
def station_changes(
    draw: st.DrawFn, pool: list[str], max_stations: int, max_cells: int
) -> tuple[dict[str, frozenset[str]], list[tuple[str, StationState | None]]]:
    count = draw(st.integers(1, max_stations))
    catchments = {
        f"S-{i:03d}": frozenset(
            draw(st.lists(st.sampled_from(pool), min_size=1, max_size=max_cells, unique=True))
        )
        for i in range(count)
    }
    changes = draw(
        st.lists(
            st.tuples(st.sampled_from(sorted(catchments)), st.sampled_from(STATES)), max_size=40
        )
    )
    return catchments, changes


@settings(max_examples=100, deadline=None)
@given(
    scenario=station_changes(SMALL_POOL, max_stations=6, max_cells=10),
    weight=st.one_of(st.sampled_from([0.0, 0.5, 1.0, 1 / 3]), st.floats(0.0, 1.0)),
    data=st.data(),
)
def test_index_equals_a_recount(
    scenario: tuple[dict[str, frozenset[str]], list[tuple[str, StationState | None]]],
    weight: float,
    data: st.DataObject,
) -> None:
    catchments, changes = scenario
    index = CoverageIndex(weight)
    stations: Stations = {s: (None, cells) for s, cells in catchments.items()}
    ratios = {s: data.draw(RATIOS, label=f"ratio of {s}") for s in sorted(catchments)}
    for station_id, new in changes:
        old, cells = stations[station_id]
        before = recount(stations)
        flipped = index.move(cells, old, new, supply_ratio=ratios[station_id])
        stations[station_id] = (new, cells)
        after = recount(stations)

        empty = CellCoverage()
        expected_flips = {
            c
            for c in cells
            if covered(before.get(c, empty), weight) != covered(after.get(c, empty), weight)
        }
        assert len(flipped) == len(set(flipped))
        assert set(flipped) == expected_flips

        assert set(index.cells()) == set(after)
        assert len(index) == len(after)
        for cell in SMALL_POOL:
            expected = after.get(cell, empty)
            assert index.coverage(cell) == expected
            assert index.is_covered(cell) == covered(expected, weight)
            assert index.effective(cell) == expected.available + weight * expected.degraded
            assert index.access(cell) == pytest.approx(
                access_sum(stations, ratios, weight, cell), abs=1e-9
            )
            assert index.reach(cell) == (
                index.coverage(cell),
                index.is_covered(cell),
                index.access(cell),
            )
            assert index.covered_and_access(cell) == (index.is_covered(cell), index.access(cell))
            assert index.coverage(cell).stations == sum(
                1 for state, cells_ in stations.values() if state is not None and cell in cells_
            )


def test_two_half_weighted_degraded_stations_cover_a_cell() -> None:
    index = CoverageIndex(0.5)
    cell = SMALL_POOL[0]
    assert index.move([cell], None, StationState.degraded) == []
    assert index.move([cell], None, StationState.degraded) == [cell]
    assert index.is_covered(cell)
    assert index.move([cell], StationState.degraded, StationState.closed) == [cell]
    assert index.move([cell], StationState.closed, StationState.closed) == []
    assert index.move([cell], StationState.closed, None) == []
    assert index.move([cell], StationState.degraded, None) == []
    assert len(index) == 0


# --- zones -------------------------------------------------------------------------------


def zone_settings() -> Settings:
    return Settings(degraded_coverage_weight=0.5)


def assert_zones_equal_single(zones: dict[str, ZoneCoverage], single: CoverageIndex) -> None:
    """Every cell lives in exactly its own zone, with the counts and access of the single
    index."""
    union: set[str] = set()
    for zone_id, zone in zones.items():
        assert zone.zone == zone_id
        cells = set(zone.index.cells())
        assert all(GRID.zone_of(c) == zone_id for c in cells), "a cell in the wrong zone"
        assert not (cells & union), "a cell in two zones"
        union |= cells
    assert union == set(single.cells())
    for cell in union | set(WIDE_POOL):
        zone = zones.get(GRID.zone_of(cell))
        coverage = zone.index.coverage(cell) if zone is not None else CellCoverage()
        assert coverage == single.coverage(cell), cell
        assert (zone is not None and zone.index.is_covered(cell)) == single.is_covered(cell)
        access = zone.index.access(cell) if zone is not None else 0.0
        assert access == pytest.approx(single.access(cell), abs=1e-9), cell


@settings(max_examples=60, deadline=None)
@given(scenario=station_changes(WIDE_POOL, max_stations=8, max_cells=40), data=st.data())
def test_zone_partitioning_loses_nothing(
    scenario: tuple[dict[str, frozenset[str]], list[tuple[str, StationState | None]]],
    data: st.DataObject,
) -> None:
    catchments, changes = scenario
    ratios = {s: data.draw(RATIOS, label=f"ratio of {s}") for s in sorted(catchments)}
    config = zone_settings()
    zones: dict[str, ZoneCoverage] = {}
    book = ZoneCoverageBook(zones, DemandLayer.build(GRID, []), config)
    single = CoverageIndex(config.degraded_coverage_weight)
    current: dict[str, StationState | None] = dict.fromkeys(catchments)
    at = T0
    for station_id, new in changes:
        if new is None:
            continue  # a state change always has a new state
        at += timedelta(minutes=1)
        change = StationStateChanged(
            station_id=station_id, old=current[station_id], new=new, at=at, reason="test"
        )
        deltas = fan_out(change, catchments[station_id], GRID, ratios[station_id])
        assert sorted(c for d in deltas for c in d.cells) == sorted(catchments[station_id])
        assert len({d.zone for d in deltas}) == len(deltas)
        flipped_in_zones: list[str] = []
        for delta in deltas:
            flipped, assessment = book.apply(delta)
            assert assessment.zone == delta.zone
            flipped_in_zones += flipped
        flipped_single = single.move(
            catchments[station_id], current[station_id], new, supply_ratio=ratios[station_id]
        )
        assert sorted(flipped_in_zones) == sorted(flipped_single)
        current[station_id] = new
        assert_zones_equal_single(zones, single)


def check_in(station_id: str, at: datetime, status: CheckInStatus) -> CheckInEvent:
    return CheckInEvent(
        event_id=uuid.uuid4(),
        type=EventType.check_in,
        station_id=station_id,
        occurred_at=at,
        payload=CheckInPayload(status=status),
    )


def health(station_id: str, at: datetime, water: AmenityState) -> HealthCheckEvent:
    return HealthCheckEvent(
        event_id=uuid.uuid4(),
        type=EventType.health_check,
        station_id=station_id,
        occurred_at=at,
        payload=HealthCheckPayload(amenities={Amenity.drinking_water: water}),
    )


STATION_IDS = [f"P-{i:03d}" for i in range(5)]
DEMAND = [
    DemandCell(cell=cell, demand_workers=float(1 + i % 7), district="D")
    for i, cell in enumerate(sorted(h3.grid_disk(ORIGIN, 9)))
]
PIPELINE_STEP = st.tuples(
    st.sampled_from(STATION_IDS),
    st.sampled_from(["open", "closed", "paused", "water_out", "water_ok", "tick"]),
    st.integers(0, 12),  # minutes since the previous step
)


@settings(max_examples=40, deadline=None)
@given(
    offsets=st.lists(
        st.tuples(st.floats(-0.012, 0.012), st.floats(-0.015, 0.015)),
        min_size=len(STATION_IDS),
        max_size=len(STATION_IDS),
    ),
    steps=st.lists(PIPELINE_STEP, max_size=30),
)
def test_pipeline_zones_equal_a_single_index_fed_its_changes(
    offsets: list[tuple[float, float]], steps: list[tuple[str, str, int]]
) -> None:
    config = Settings(
        degraded_coverage_weight=0.5, heartbeat_interval_seconds=300, silence_missed_heartbeats=2
    )
    registry = {
        sid: make_station(sid, CENTRE[0] + dlat, CENTRE[1] + dlon)
        for sid, (dlat, dlon) in zip(STATION_IDS, offsets, strict=True)
    }
    catchments = CircleCatchments(GRID, 600.0)
    demand = DemandLayer.build(GRID, DEMAND)
    records: dict[str, StationRecord] = {}
    zones: dict[str, ZoneCoverage] = {}
    pipeline = Pipeline(
        settings=config,
        demand=demand,
        registry=registry,
        catchments=catchments,
        records=records,
        zones=zones,
        alerts={},
        visits={},
    )
    single = CoverageIndex(config.degraded_coverage_weight)
    now = T0
    for station_id, action, elapsed in steps:
        now += timedelta(minutes=elapsed)
        event: Event | None = None
        if action in ("open", "closed", "paused"):
            event = check_in(station_id, now, CheckInStatus(action))
        elif action == "water_out":
            event = health(station_id, now, AmenityState.out_of_service)
        elif action == "water_ok":
            event = health(station_id, now, AmenityState.ok)
        outcome = pipeline.handle(event, now) if event is not None else pipeline.tick(now)
        flipped_single: list[str] = []
        for change in outcome.station_changes:
            station = registry[change.station_id]
            cells = catchments.cells(station.lat, station.lon)
            ratio = supply_ratio(station.capacity, cells, demand.demand)
            flipped_single += single.move(cells, change.old, change.new, supply_ratio=ratio)
        assert sorted(outcome.flipped_cells) == sorted(flipped_single)
        assert_zones_equal_single(zones, single)
    # And the index agrees with the ledger: recount from the records' states.
    expected = recount(
        {
            sid: (record.state, catchments.cells(registry[sid].lat, registry[sid].lon))
            for sid, record in records.items()
        }
    )
    assert set(single.cells()) == set(expected)
    assert all(single.coverage(c) == cov for c, cov in expected.items())


def test_book_reports_every_flip_when_a_catchment_changes() -> None:
    """A station whose catchment changes (it moved, or the reach was changed) leaves its old
    cells and enters its new ones; every cell whose covered flag flipped is reported."""
    config = zone_settings()
    zones: dict[str, ZoneCoverage] = {}
    book = ZoneCoverageBook(zones, DemandLayer.build(GRID, []), config)
    zone = GRID.zone_of(ORIGIN)
    same_zone = sorted(c for c in WIDE_POOL if GRID.zone_of(c) == zone)
    a, b, c = same_zone[:3]
    first = StationStateChanged(
        station_id="S-1", old=None, new=StationState.available, at=T0, reason="open"
    )
    [delta] = fan_out(first, frozenset({a, b}), GRID, 0.0)
    flipped, _ = book.apply(delta)
    assert sorted(flipped) == sorted([a, b])
    [moved] = fan_out(first, frozenset({b, c}), GRID, 0.0)
    flipped, _ = book.apply(moved)
    assert not zones[zone].index.is_covered(a)
    assert zones[zone].index.is_covered(c)
    assert sorted(flipped) == sorted([a, c])


def test_a_down_station_that_moves_is_named_for_the_gap_it_reaches_now() -> None:
    """A closed station that moves within its zone leaves the gap it reached before: once its
    new cells are covered by another station it is no longer named, though its old ones are
    still underserved."""
    zone = GRID.zone_of(ORIGIN)
    same_zone = sorted(c for c in WIDE_POOL if GRID.zone_of(c) == zone)
    old_cells, new_cells = frozenset(same_zone[:2]), frozenset(same_zone[2:4])
    layer = DemandLayer.build(
        GRID, [DemandCell(cell=c, demand_workers=3.0, district="D") for c in same_zone[:4]]
    )
    book = ZoneCoverageBook({}, layer, Settings(min_cell_demand_workers=1.0))
    closed = StationStateChanged(
        station_id="S-down", old=None, new=StationState.closed, at=T0, reason="closed"
    )
    for delta in fan_out(closed, old_cells, GRID, 0.0):
        book.apply(delta)
    assert book.assess(zone).stations_down == ("S-down",)
    for delta in fan_out(closed, new_cells, GRID, 0.0, previous=old_cells):
        book.apply(delta)
    assert book.assess(zone).stations_down == ("S-down",)
    opened = StationStateChanged(
        station_id="S-up", old=None, new=StationState.available, at=T0, reason="open"
    )
    for delta in fan_out(opened, new_cells, GRID, 1.0):
        book.apply(delta)
    assessment = book.assess(zone)
    assert set(assessment.uncovered_cells) == set(old_cells)
    assert assessment.stations_down == ()


def test_a_zone_left_behind_by_a_catchment_change_forgets_the_station() -> None:
    config = zone_settings()
    zones: dict[str, ZoneCoverage] = {}
    book = ZoneCoverageBook(zones, DemandLayer.build(GRID, []), config)
    by_zone: dict[str, list[str]] = {}
    for cell in WIDE_POOL:
        by_zone.setdefault(GRID.zone_of(cell), []).append(cell)
    (zone_1, cells_1), (zone_2, cells_2) = sorted(by_zone.items())[:2]
    change = StationStateChanged(
        station_id="S-1", old=None, new=StationState.available, at=T0, reason="open"
    )
    for delta in fan_out(change, frozenset(cells_1[:3]), GRID, 0.0):
        book.apply(delta)
    assert all(zones[zone_1].index.is_covered(c) for c in cells_1[:3])
    later = change.model_copy(
        update={"old": StationState.available, "at": T0 + timedelta(minutes=1)}
    )
    for delta in fan_out(later, frozenset(cells_2[:3]), GRID, 0.0, previous=frozenset(cells_1[:3])):
        book.apply(delta)
    assert all(zones[zone_2].index.is_covered(c) for c in cells_2[:3])
    assert not any(zones[zone_1].index.is_covered(c) for c in cells_1[:3])


@settings(max_examples=60, deadline=None)
@given(
    scenario=station_changes(WIDE_POOL, max_stations=8, max_cells=40),
    data=st.data(),
    min_access=st.sampled_from([0.0, 0.05, 0.5]),
)
def test_incremental_zone_judgement_equals_judging_from_scratch(
    scenario: tuple[dict[str, frozenset[str]], list[tuple[str, StationState | None]]],
    data: st.DataObject,
    min_access: float,
) -> None:
    """Zones keep their underserved cells, and the down stations reaching them, up to date
    from the cells each delta touches, stations moving too; the result must equal judging
    every demand cell against a single index."""
    catchments, changes = scenario
    ratios = {s: data.draw(RATIOS, label=f"ratio of {s}") for s in sorted(catchments)}
    demand_cells = [
        DemandCell(cell=c, demand_workers=float(i % 5), district="D")
        for i, c in enumerate(sorted(WIDE_POOL))
    ]
    config = Settings(
        degraded_coverage_weight=0.5,
        min_cell_demand_workers=1.0,
        min_access_seats_per_worker=min_access,
    )
    layer = DemandLayer.build(GRID, demand_cells)
    book = ZoneCoverageBook({}, layer, config)
    single = CoverageIndex(config.degraded_coverage_weight)
    current: dict[str, StationState | None] = dict.fromkeys(catchments)
    pool = sorted(WIDE_POOL)
    for station_id, new in changes:
        if new is None:
            continue
        change = StationStateChanged(
            station_id=station_id, old=current[station_id], new=new, at=T0, reason="test"
        )
        before = catchments[station_id]
        if current[station_id] is not None and data.draw(st.booleans(), label="moves"):
            # The station moves: its catchment changes, zones it left forget it.
            moved = data.draw(st.sets(st.sampled_from(pool), max_size=40), label="new reach")
            catchments[station_id] = frozenset(moved)
            single.move(before, current[station_id], None, old_supply_ratio=ratios[station_id])
            single.move(catchments[station_id], None, new, supply_ratio=ratios[station_id])
        else:
            single.move(before, current[station_id], new, supply_ratio=ratios[station_id])
        for delta in fan_out(
            change, catchments[station_id], GRID, ratios[station_id], previous=before
        ):
            book.apply(delta)
        current[station_id] = new
    for zone_id, members in layer.cells_of_zone.items():
        expected = [
            c
            for c in members
            if layer.demand[c] >= 1.0
            and (not single.is_covered(c) or single.access(c) < min_access)
        ]
        assessment = book.assess(zone_id)
        # Access sums may differ in the last bits between the two indexes: allow a cell whose
        # access sits on the threshold to go either way.
        borderline = {c for c in members if abs(single.access(c) - min_access) < 1e-9}
        assert set(assessment.uncovered_cells) ^ set(expected) <= borderline
        if not borderline:
            assert assessment.uncovered_demand_workers == pytest.approx(
                sum(layer.demand[c] for c in expected)
            )
            # The stations that are down and reach one of those cells.
            assert assessment.stations_down == tuple(
                sorted(
                    station_id
                    for station_id, state in current.items()
                    if state is not None
                    and state not in COUNTING_STATES
                    and not catchments[station_id].isdisjoint(expected)
                )
            )


def test_a_zone_loaded_without_its_judgement_is_judged_on_first_use() -> None:
    """Zones recovered from a changelog carry only their stations; the underserved cells are
    derived and must come back the same."""
    demand_cells = [DemandCell(cell=c, demand_workers=3.0, district="D") for c in sorted(WIDE_POOL)]
    layer = DemandLayer.build(GRID, demand_cells)
    config = Settings(degraded_coverage_weight=0.5)
    book = ZoneCoverageBook({}, layer, config)
    catchment = frozenset(sorted(WIDE_POOL)[:10])
    change = StationStateChanged(
        station_id="S", old=None, new=StationState.available, at=T0, reason="test"
    )
    for delta in fan_out(change, catchment, GRID, 0.1):
        book.apply(delta)
    before = {zone: book.assess(zone) for zone in layer.cells_of_zone}
    reloaded: dict[str, ZoneCoverage] = {}
    for zone_id, zone in book.zones.items():
        bare = ZoneCoverage(zone=zone_id, index=zone.index, stations=dict(zone.stations))
        reloaded[zone_id] = bare
    again = ZoneCoverageBook(reloaded, layer, config)
    assert {zone: again.assess(zone) for zone in layer.cells_of_zone} == before
