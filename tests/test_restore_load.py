"""A restore loads a whole network into the zones at once (`ZoneCoverageBook.load`): the same
zones as moving each station in, one delta at a time (`move`), which is the oracle here."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import h3
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.catchment import CircleCatchments
from geo.demand import DemandLayer
from geo.grid import Grid
from schemas.geography import DemandCell
from schemas.state import CoverageDelta, StationStateChanged
from schemas.stations import StationState
from streams.coverage import ZoneCoverageBook, fan_out
from waystation.settings import Settings

GRID = Grid(9, 7)
AT = datetime(2025, 6, 2, 8, tzinfo=UTC)
SETTINGS = Settings(min_cell_demand_workers=1.0, min_access_seats_per_worker=0.05)
ACCESS_TOLERANCE = 1e-9  # seats per worker: sums taken in another order


@st.composite
def networks(draw: st.DrawFn) -> tuple[list[CoverageDelta], DemandLayer]:
    """Stations around a point, in any state, with the deltas a restore gives for them (some
    stations twice, the later delta winning), and demand on cells around them."""
    lat0 = draw(st.floats(-60.0, 60.0))
    lon0 = draw(st.floats(-179.0, 179.0))
    catchments = CircleCatchments(GRID, draw(st.sampled_from([400.0, 900.0])))
    offsets = st.floats(-0.02, 0.02)
    deltas: list[CoverageDelta] = []
    for i in range(draw(st.integers(1, 14))):
        point = (lat0 + draw(offsets), lon0 + draw(offsets))
        for _ in range(draw(st.integers(1, 2))):
            change = StationStateChanged(
                station_id=f"S-{i:03d}",
                old=None,
                new=draw(st.sampled_from(list(StationState))),
                at=AT,
                reason="restored",
            )
            ratio = draw(st.floats(0.0, 2.0))
            deltas += fan_out(change, catchments.cells(*point), GRID, ratio)
    centre = h3.latlng_to_cell(lat0, lon0, GRID.resolution)
    demand = [
        DemandCell(cell=cell, demand_workers=draw(st.floats(0.0, 20.0)), district="D")
        for cell in sorted(h3.grid_disk(centre, 12))
    ]
    return deltas, DemandLayer.build(GRID, demand)


@settings(max_examples=60, deadline=None)
@given(networks())
def test_loading_a_network_gives_the_zones_moving_it_in_gives(
    network: tuple[list[CoverageDelta], DemandLayer],
) -> None:
    deltas, demand = network
    loaded = ZoneCoverageBook({}, demand, SETTINGS)
    moved = ZoneCoverageBook({}, demand, SETTINGS)
    flipped = loaded.load(deltas)
    expected: set[str] = set()
    for delta in deltas:
        expected.symmetric_difference_update(moved.move(delta))
    assert set(flipped) == expected, "from nothing, the cells covered at the end"
    assert len(flipped) == len(set(flipped))
    assert {z for z, zone in loaded.zones.items() if zone.stations} == {
        z for z, zone in moved.zones.items() if zone.stations
    }
    for zone_id, zone in moved.zones.items():
        mine = loaded.zones[zone_id]
        assert mine.stations == zone.stations
        for cell in set(zone.index.cells()) | set(mine.index.cells()):
            assert mine.index.coverage(cell) == zone.index.coverage(cell), cell
            assert mine.index.is_covered(cell) == zone.index.is_covered(cell), cell
            assert math.isclose(
                mine.index.access(cell), zone.index.access(cell), abs_tol=ACCESS_TOLERANCE
            )
        ours, theirs = loaded.assess(zone_id), moved.assess(zone_id)
        assert ours.uncovered_cells == theirs.uncovered_cells
        assert ours.stations_down == theirs.stations_down
        assert math.isclose(ours.uncovered_demand_workers, theirs.uncovered_demand_workers)


def test_a_zone_already_holding_stations_takes_its_deltas_one_by_one() -> None:
    catchments = CircleCatchments(GRID, 900.0)
    cells = catchments.cells(39.95, 116.48)

    def deltas(station_id: str, state: StationState) -> list[CoverageDelta]:
        change = StationStateChanged(
            station_id=station_id, old=None, new=state, at=AT, reason="restored"
        )
        return fan_out(change, cells, GRID, 0.5)

    demand = DemandLayer.build(GRID, [])
    book = ZoneCoverageBook({}, demand, SETTINGS)
    book.load(deltas("S-001", StationState.available))
    before = {zone_id: dict(zone.stations) for zone_id, zone in book.zones.items()}
    flipped = book.load(deltas("S-002", StationState.degraded))
    assert flipped == [], "a degraded station adds to cells one available station covers"
    for zone_id, zone in book.zones.items():
        assert set(zone.stations) == {*before[zone_id], "S-002"}, "the first is kept"
        for cell in zone.stations["S-001"].cells:
            assert zone.index.coverage(cell).available == 1
            assert zone.index.coverage(cell).degraded == 1
