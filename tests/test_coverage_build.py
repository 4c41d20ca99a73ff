"""The vectorised from-scratch coverage build equals a brute-force oracle: every cell centre
of a wide disk measured to every station with the exact geodesic, counted in plain Python;
and an index built at once behaves like one built station by station, also after changes."""

from __future__ import annotations

from collections import defaultdict

import h3
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geo.catchment import CircleCatchments
from geo.coverage import CoverageIndex
from geo.grid import Grid
from schemas.stations import StationState

GRID = Grid(9, 7)
GEOD = Geod(ellps="WGS84")
STATES = [*StationState, None]
DEGRADED_WEIGHT = 0.5
ORACLE_RINGS = 12  # > reach / ring spacing: every cell in reach of a station is in its disk
EDGE_OFFSET_M = 0.001  # points this far inside or outside the radius of a cell's centre
EDGE_DIRECTIONS = 48


@st.composite
def networks(draw: st.DrawFn) -> tuple[list[tuple[float, float]], list, np.ndarray, float]:
    lat0 = draw(st.floats(-75.0, 75.0))
    lon0 = draw(st.floats(-179.0, 179.0))
    count = draw(st.integers(1, 12))
    offsets = st.floats(-0.01, 0.01)
    points = [(lat0 + draw(offsets), lon0 + draw(offsets)) for _ in range(count)]
    states = [draw(st.sampled_from(STATES)) for _ in range(count)]
    ratios = np.array([draw(st.floats(0.0, 5.0)) for _ in range(count)])
    radius = draw(st.sampled_from([300.0, 700.0, 1000.0]))
    return points, states, ratios, radius


def oracle(
    points: list[tuple[float, float]], states: list, ratios: np.ndarray, radius: float
) -> tuple[dict[str, list[int]], dict[str, float]]:
    """Counts by state and access per cell, by exhaustive geodesic distances."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    access: dict[str, float] = defaultdict(float)
    slots = {state: i for i, state in enumerate(StationState)}
    weight = {StationState.available: 1.0, StationState.degraded: DEGRADED_WEIGHT}
    for (lat, lon), state, ratio in zip(points, states, ratios, strict=True):
        if state is None:
            continue
        for cell in h3.grid_disk(h3.latlng_to_cell(lat, lon, GRID.resolution), ORACLE_RINGS):
            c_lat, c_lon = h3.cell_to_latlng(cell)
            _, _, metres = GEOD.inv(lon, lat, c_lon, c_lat)
            if metres <= radius:
                counts[cell][slots[state]] += 1
                access[cell] += weight.get(state, 0.0) * ratio
    return dict(counts), dict(access)


def built(points: list[tuple[float, float]], states: list, ratios: np.ndarray, radius: float):
    members = CircleCatchments(GRID, radius).members(points)
    return CoverageIndex.build(
        DEGRADED_WEIGHT,
        owners=members.owners,
        cells=members.cells,
        states=states,
        supply_ratios=ratios,
    )


@settings(max_examples=60, deadline=None)
@given(networks())
def test_vectorised_build_equals_the_brute_force_oracle(network) -> None:
    points, states, ratios, radius = network
    index = built(points, states, ratios, radius)
    counts, access = oracle(points, states, ratios, radius)
    assert set(index.cells()) == set(counts)
    assert len(index) == len(counts)
    for cell, expected in counts.items():
        assert list(index.coverage(cell).__dict__.values()) == expected
        assert index.is_covered(cell) == (expected[0] + DEGRADED_WEIGHT * expected[1] >= 1.0)
        assert abs(index.access(cell) - max(0.0, access[cell])) < 1e-9
    keys = np.array([int(cell, 16) for cell in counts], np.int64)
    flags = index.covered_many(keys)
    assert flags.tolist() == [index.is_covered(cell) for cell in counts]


@settings(max_examples=40, deadline=None)
@given(networks(), st.data())
def test_built_at_once_behaves_like_built_station_by_station(network, data) -> None:
    points, states, ratios, radius = network
    at_once = built(points, states, ratios, radius)
    catchments = CircleCatchments(GRID, radius)
    one_by_one = CoverageIndex(DEGRADED_WEIGHT)
    for (lat, lon), state, ratio in zip(points, states, ratios, strict=True):
        one_by_one.move(catchments.cells(lat, lon), None, state, supply_ratio=ratio)
    # Then the same changes to both: flipped cells and the results agree.
    for _ in range(data.draw(st.integers(0, 6))):
        i = data.draw(st.integers(0, len(points) - 1))
        new = data.draw(st.sampled_from(STATES))
        cells = catchments.cells(*points[i])
        expected = one_by_one.move(cells, states[i], new, supply_ratio=ratios[i])
        assert at_once.move(cells, states[i], new, supply_ratio=ratios[i]) == expected
        states[i] = new
    assert sorted(at_once.cells()) == sorted(one_by_one.cells())
    assert len(at_once) == len(one_by_one)
    everything = {c for p in points for c in catchments.cells(*p)}
    for cell in everything:
        assert at_once.coverage(cell) == one_by_one.coverage(cell)
        assert abs(at_once.access(cell) - one_by_one.access(cell)) < 1e-9
        # The one-lookup reads agree with the separate ones, from the arrays or the dict.
        reads = (at_once.coverage(cell), at_once.is_covered(cell), at_once.access(cell))
        assert at_once.reach(cell) == reads
        assert at_once.covered_and_access(cell) == reads[1:]
    keys = np.array([int(cell, 16) for cell in sorted(everything)], np.int64)
    assert at_once.covered_many(keys).tolist() == [
        one_by_one.is_covered(c) for c in sorted(everything)
    ]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-85.0, 85.0), st.floats(-180.0, 180.0)), max_size=6))
def test_members_are_the_cached_catchments(points) -> None:
    members = CircleCatchments(GRID, 1000.0).members(points)
    one_by_one = CircleCatchments(GRID, 1000.0)
    found: dict[int, set[str]] = defaultdict(set)
    for owner, cell in zip(members.owners.tolist(), members.cells.tolist(), strict=True):
        found[owner].add(format(cell, "x"))
    for i, (lat, lon) in enumerate(points):
        assert found.get(i, set()) == set(one_by_one.cells(lat, lon))


@settings(max_examples=60, deadline=None)
@given(networks(), st.integers(0, 2**32 - 1))
def test_reach_over_given_cells_equals_the_brute_force_oracle(network, seed) -> None:
    """`reach` finds, among given cells (a random part of the area, as a demand layer is),
    exactly the cells the oracle puts in each station's catchment."""
    points, states, ratios, radius = network
    area = sorted(
        {c for lat, lon in points for c in h3.grid_disk(h3.latlng_to_cell(lat, lon, 9), 8)}
    )
    rng = np.random.default_rng(seed)
    given_cells = [c for c in area if rng.random() < 0.7]
    centres = np.array([h3.cell_to_latlng(c) for c in given_cells]).reshape(-1, 2)
    members = CircleCatchments(GRID, radius).reach(points, centres[:, 0], centres[:, 1])
    index = CoverageIndex.build(
        DEGRADED_WEIGHT,
        owners=members.owners,
        cells=np.array([int(given_cells[j], 16) for j in members.cells.tolist()], np.int64),
        states=states,
        supply_ratios=ratios,
    )
    counts, access = oracle(points, states, ratios, radius)
    wanted = set(given_cells)
    expected = {cell: n for cell, n in counts.items() if cell in wanted}
    assert set(index.cells()) == set(expected)
    for cell, n in expected.items():
        assert list(index.coverage(cell).__dict__.values()) == n
        assert abs(index.access(cell) - max(0.0, access[cell])) < 1e-9


def exact_pairs(
    points: list[tuple[float, float]], cells: list[str], radius: float
) -> set[tuple[int, int]]:
    """Every (point, cell) pair whose geodesic distance is within the radius, all measured."""
    centres = np.array([h3.cell_to_latlng(c) for c in cells])
    found = set()
    for i, (lat, lon) in enumerate(points):
        _, _, metres = GEOD.inv(
            np.full(len(cells), lon), np.full(len(cells), lat), centres[:, 1], centres[:, 0]
        )
        found.update((i, j) for j in np.flatnonzero(np.asarray(metres) <= radius).tolist())
    return found


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from([(0.0, 179.99), (69.97, -179.99), (-69.97, 12.0), (0.5, 0.0)]),
    st.lists(st.tuples(st.floats(-0.03, 0.03), st.floats(-0.06, 0.06)), min_size=1, max_size=8),
    st.sampled_from([300.0, 1000.0, 2500.0]),
)
def test_reach_across_the_antimeridian_and_far_north_or_south(centre, offsets, radius) -> None:
    """`reach` at the edges of its bands: across the antimeridian (longitudes wrap), near the
    latitude limit of the approximation (points beyond it go through `cells`) and across
    the equator; every pair measured, and the pairs come in order of cell, then owner."""
    lat0, lon0 = centre
    points = [(lat0 + dlat, (lon0 + dlon + 180.0) % 360.0 - 180.0) for dlat, dlon in offsets]
    cells = sorted(h3.grid_disk(h3.latlng_to_cell(lat0, lon0, GRID.resolution), 18))
    centres = np.array([h3.cell_to_latlng(c) for c in cells])
    members = CircleCatchments(GRID, radius).reach(points, centres[:, 0], centres[:, 1])
    pairs = list(zip(members.owners.tolist(), members.cells.tolist(), strict=True))
    assert set(pairs) == exact_pairs(points, cells, radius)
    assert pairs == sorted(pairs, key=lambda pair: (pair[1], pair[0]))


@settings(max_examples=40, deadline=None)
@given(networks(), st.integers(0, 2**32 - 1))
def test_build_from_pairs_in_cell_order_equals_build_from_any_order(network, seed) -> None:
    """The build groups pairs in cell order as they come, and sorts any others: the same
    index either way, with stations in mixed states or all in one."""
    points, states, ratios, radius = network
    for in_states in (states, [StationState.available] * len(states)):
        members = CircleCatchments(GRID, radius).members(points)
        order = np.lexsort((members.owners, members.cells))
        shuffled = np.random.default_rng(seed).permutation(order.size)
        grouped, scattered = (
            CoverageIndex.build(
                DEGRADED_WEIGHT,
                owners=members.owners[at],
                cells=members.cells[at],
                states=in_states,
                supply_ratios=ratios,
            )
            for at in (order, shuffled)
        )
        assert sorted(grouped.cells()) == sorted(scattered.cells())
        for cell in scattered.cells():
            assert grouped.coverage(cell) == scattered.coverage(cell)
            assert abs(grouped.access(cell) - scattered.access(cell)) < 1e-9


@pytest.mark.parametrize(
    ("lat", "lon"), [(0.0, 179.9999), (35.0, 116.4), (-52.0, -0.0001), (69.9, -179.9999)]
)
@pytest.mark.parametrize("radius", [300.0, 1000.0, 25_000.0])
def test_reach_decides_cells_a_millimetre_either_side_of_the_edge(lat, lon, radius) -> None:
    """Points placed (by the exact geodesic) a millimetre inside and outside the radius of
    one cell's centre, in every direction: `reach` takes the first and leaves the second,
    whichever runs or bounds the cell falls between."""
    cells = sorted(h3.grid_disk(h3.latlng_to_cell(lat, lon, GRID.resolution), 2))
    target = cells.index(h3.latlng_to_cell(lat, lon, GRID.resolution))
    cell_lat, cell_lon = h3.cell_to_latlng(cells[target])
    azimuths = np.arange(0.0, 360.0, 360.0 / EDGE_DIRECTIONS)
    points = []
    for offset in (-EDGE_OFFSET_M, EDGE_OFFSET_M):
        lons, lats, _ = GEOD.fwd(
            np.full(azimuths.size, cell_lon),
            np.full(azimuths.size, cell_lat),
            azimuths,
            np.full(azimuths.size, radius + offset),
        )
        points += list(zip(np.asarray(lats).tolist(), np.asarray(lons).tolist(), strict=True))
    centres = np.array([h3.cell_to_latlng(c) for c in cells])
    members = CircleCatchments(GRID, radius).reach(points, centres[:, 0], centres[:, 1])
    reached = set(members.owners[members.cells == target].tolist())
    assert reached == set(range(azimuths.size))
