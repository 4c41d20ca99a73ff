"""Road-network catchments: rivers cut reach, snapping counts, and a brute force agrees."""

from __future__ import annotations

import math

import h3
import numpy as np
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geo.catchment import CircleCatchments
from geo.grid import Grid
from geo.network import NetworkCatchments, StreetNetwork

GEOD = Geod(ellps="WGS84")
GRID = Grid()
LAT0, LON0 = 39.93, 116.45
M_PER_DEG_LAT = 111_000.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))

WALK_KMH = 5.0
MINUTES = 15.0
BUDGET_M = 1250.0  # 5 km/h for 15 minutes
CIRCLE_RADIUS_M = 1000.0  # the same walk over a detour factor of 1.25

# The river scene: streets every 100 m over 4 km x 4 km, cut by a river from y = 2,000 m to
# y = 2,400 m that only one street bridges.
SPACING_M = 100
EXTENT_M = 4000
RIVER_SOUTH_M, RIVER_NORTH_M = 2000, 2400
BRIDGE_X_M = 2500
TOL_M = 1e-6


def lonlat(x_m: float, y_m: float) -> tuple[float, float]:
    """(lon, lat) of a point x metres east and y metres north of the scene's origin."""
    return (LON0 + x_m / M_PER_DEG_LON, LAT0 + y_m / M_PER_DEG_LAT)


def geodesic(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def river_city() -> StreetNetwork:
    ticks = range(0, EXTENT_M + 1, SPACING_M)
    south = [y for y in ticks if y <= RIVER_SOUTH_M]
    north = [y for y in ticks if y >= RIVER_NORTH_M]
    lines = [[lonlat(x, y) for x in ticks] for y in south + north]  # east-west streets
    for x in ticks:  # north-south streets stop at the banks, except the bridge street
        if x == BRIDGE_X_M:
            lines.append([lonlat(x, y) for y in ticks])
        else:
            lines.append([lonlat(x, y) for y in south])
            lines.append([lonlat(x, y) for y in north])
    return StreetNetwork.from_lines(lines)


def north_of_river(cells: frozenset[str]) -> set[str]:
    bank_lat = lonlat(0, RIVER_NORTH_M)[1]
    return {cell for cell in cells if GRID.centre(cell)[0] > bank_lat}


def walking(network: StreetNetwork, max_snap_m: float = 200.0) -> NetworkCatchments:
    return NetworkCatchments(
        GRID, network, speed_kmh=WALK_KMH, minutes=MINUTES, max_snap_m=max_snap_m
    )


def test_a_river_without_a_nearby_bridge_cuts_the_network_catchment() -> None:
    network = river_city()
    catchments = walking(network)
    assert catchments.budget_m == pytest.approx(BUDGET_M)
    # 300 m south of the river and 1.5 km west of the bridge.
    lon, lat = lonlat(BRIDGE_X_M - 1500, RIVER_SOUTH_M - 300)

    circle = CircleCatchments(GRID, CIRCLE_RADIUS_M).cells(lat, lon)
    along_streets = catchments.cells(lat, lon)

    assert north_of_river(circle), "the circle jumps the river"
    assert along_streets, "the station reaches its own streets"
    assert north_of_river(along_streets) == set()
    assert GRID.cell_of(lat, lon) in along_streets


def test_a_station_by_the_bridge_reaches_across_the_river() -> None:
    catchments = walking(river_city())
    lon, lat = lonlat(BRIDGE_X_M + 20, RIVER_SOUTH_M - 20)

    across = north_of_river(catchments.cells(lat, lon))

    assert across
    # About 800 m of budget is left on the north bank, and the far side of it is reached.
    far_lat = lonlat(0, RIVER_NORTH_M + 600)[1]
    assert any(GRID.centre(cell)[0] > far_lat for cell in across)


# Brute force: the same rule written plainly, over a graph of its own.


@st.composite
def small_networks(draw: st.DrawFn) -> tuple[list[tuple[float, float]], list[tuple[int, int]]]:
    points = draw(
        st.lists(
            st.tuples(st.integers(-1000, 1000), st.integers(-1000, 1000)),
            min_size=2,
            max_size=9,
            unique=True,
        )
    )
    n = len(points)
    # (a, a + 1 + k) modulo n never pairs a node with itself.
    steps = st.tuples(st.integers(0, n - 1), st.integers(0, n - 2))
    pairs = [(a, (a + 1 + k) % n) for a, k in draw(st.lists(steps, min_size=1, max_size=16))]
    return [lonlat(x, y) for x, y in points], pairs


def floyd_warshall(nodes: list[int], lengths: dict[tuple[int, int], float]) -> dict:
    dist = {(i, j): (0.0 if i == j else math.inf) for i in nodes for j in nodes}
    for (a, b), length in lengths.items():
        dist[a, b] = dist[b, a] = min(dist[a, b], length)
    for k in nodes:
        for i in nodes:
            for j in nodes:
                dist[i, j] = min(dist[i, j], dist[i, k] + dist[k, j])
    return dist


def brute_force_cells(
    coords: list[tuple[float, float]],
    lengths: dict[tuple[int, int], float],
    travel: dict[int, float],
    budget_m: float,
    step_m: float,
) -> dict[float, set[str]]:
    """Cells of every sample within the budget, at budgets a hair under and over (for rounding)."""
    found: dict[float, set[str]] = {-TOL_M: set(), TOL_M: set()}
    for (a, b), length in lengths.items():
        pieces = max(1, math.ceil(length / step_m))
        for i in range(pieces + 1):
            frac = i / pieces
            t = frac * length
            lon = coords[a][0] + frac * (coords[b][0] - coords[a][0])
            lat = coords[a][1] + frac * (coords[b][1] - coords[a][1])
            path = min(travel[a] + t, travel[b] + length - t)
            for slack, cells in found.items():
                if path <= budget_m + slack:
                    cells.add(GRID.cell_of(lat, lon))
    return found


def straight_line_cells(lat: float, lon: float, radius_m: float) -> set[str]:
    origin = GRID.cell_of(lat, lon)
    rings = math.ceil(radius_m / 200.0) + 2  # neighbouring res-9 centres are ~300 m apart
    return {
        cell
        for cell in h3.grid_disk(origin, rings)
        if geodesic((lon, lat), GRID.centre(cell)[::-1]) <= radius_m
    }


@settings(max_examples=60, deadline=None)
@given(
    network=small_networks(),
    station_m=st.tuples(st.floats(-1300, 1300), st.floats(-1300, 1300)),
    minutes=st.floats(0.5, 30.0),
    max_snap_m=st.floats(0.0, 1500.0),
    step_m=st.floats(5.0, 150.0),
)
def test_catchments_match_a_brute_force(
    network: tuple[list[tuple[float, float]], list[tuple[int, int]]],
    station_m: tuple[float, float],
    minutes: float,
    max_snap_m: float,
    step_m: float,
) -> None:
    coords, pairs = network
    lengths = {
        (min(a, b), max(a, b)): geodesic(coords[a], coords[b]) for a, b in pairs
    }  # undirected: a street listed twice is one street
    nodes = sorted({i for pair in lengths for i in pair})
    shortest = floyd_warshall(nodes, lengths)
    built = StreetNetwork.from_lines([[coords[a], coords[b]] for a, b in pairs])
    index_of = {tuple(map(float, row)): i for i, row in enumerate(built.nodes_lonlat)}
    ours = {node: index_of[coords[node]] for node in nodes}
    assert built.node_count == len(nodes)
    assert built.edge_count == len(lengths)

    # The graph: every shortest path agrees with Floyd-Warshall.
    for source in nodes:
        got = built.node_distances(ours[source])
        for target in nodes:
            want = shortest[source, target]
            if math.isinf(want):
                assert math.isinf(got[ours[target]])
            else:
                assert got[ours[target]] == pytest.approx(want, abs=1e-6)

    catchments = NetworkCatchments(
        GRID,
        built,
        speed_kmh=WALK_KMH,
        minutes=minutes,
        max_snap_m=max_snap_m,
        sample_step_m=step_m,
    )
    budget = catchments.budget_m
    lon, lat = lonlat(*station_m)
    snaps = sorted((geodesic((lon, lat), coords[node]), node) for node in nodes)
    snap_m, snapped = snaps[0]
    assume(len(snaps) == 1 or snaps[1][0] - snap_m > TOL_M)  # no tie for the nearest node
    assume(abs(snap_m - max_snap_m) > TOL_M)
    own = {GRID.cell_of(lat, lon)}
    reach = catchments.reach(lat, lon)
    cells = catchments.cells(lat, lon)

    event("off the network" if snap_m > max_snap_m else "on the network")
    if snap_m > max_snap_m:
        assert reach is None
        assert cells == own | straight_line_cells(lat, lon, budget)
        return

    assert reach is not None
    assert reach.node == ours[snapped]
    assert reach.snap_m == pytest.approx(snap_m, abs=1e-6)
    travel = {node: snap_m + shortest[snapped, node] for node in nodes}
    for node in nodes:  # the distances the catchment is built from
        got = reach.node_distances_m[ours[node]]
        if travel[node] <= budget - TOL_M:
            assert got == pytest.approx(travel[node], abs=1e-6)
        elif travel[node] > budget + TOL_M:
            assert math.isinf(got)

    expected = brute_force_cells(coords, lengths, travel, budget, step_m)
    assert own | expected[-TOL_M] <= cells <= own | expected[TOL_M]


# Building the graph


def test_geojson_with_a_point_is_refused_by_feature_index() -> None:
    document = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[116.45, 39.93], [116.46, 39.93]],
                },
            },
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Point", "coordinates": [116.45, 39.93]},
            },
        ],
    }
    with pytest.raises(ValueError, match=r"feature 1 has a Point geometry"):
        StreetNetwork.from_geojson(document)
    with pytest.raises(ValueError, match=r"feature 0 has no geometry"):
        StreetNetwork.from_geojson(
            {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": None}]}
        )
    with pytest.raises(ValueError, match=r"FeatureCollection or GeometryCollection"):
        StreetNetwork.from_geojson(document["features"][0]["geometry"])


def test_geojson_multilines_and_geometry_collections_build_the_same_graph_as_lines() -> None:
    a, b, c = lonlat(0, 0), lonlat(100, 0), lonlat(100, 100)
    collection = {
        "type": "GeometryCollection",
        "geometries": [
            {"type": "MultiLineString", "coordinates": [[[*a, 12.0], [*b, 12.0]], [b, c]]},
        ],
    }
    from_geojson = StreetNetwork.from_geojson(collection)
    from_lines = StreetNetwork.from_lines([[a, b], [b, c]])
    assert from_geojson.node_count == from_lines.node_count == 3
    np.testing.assert_array_equal(from_geojson.nodes_lonlat, from_lines.nodes_lonlat)
    np.testing.assert_array_equal(from_geojson.edge_nodes, from_lines.edge_nodes)
    np.testing.assert_array_equal(from_geojson.edge_length_m, from_lines.edge_length_m)


def test_lines_that_cross_without_a_shared_vertex_do_not_connect() -> None:
    # An expressway passing over a street: the lines cross at (0, 0) with no vertex there.
    expressway = [lonlat(-500, -500), lonlat(500, 500)]
    street = [lonlat(-500, 500), lonlat(500, -500)]
    network = StreetNetwork.from_lines([expressway, street])
    assert (network.node_count, network.edge_count) == (4, 2)
    start = network.nearest_node(expressway[0][1], expressway[0][0])
    assert start is not None
    assert start[1] == pytest.approx(0.0, abs=1e-6)
    reached = network.node_distances(start[0])
    assert np.isfinite(reached).sum() == 2  # its own two ends only

    # A junction is a shared vertex, matched to within the node precision.
    centre = lonlat(0, 0)
    nudged = (centre[0] + 1e-9, centre[1] - 1e-9)
    joined = StreetNetwork.from_lines(
        [[expressway[0], centre, expressway[1]], [street[0], nudged, street[1]]]
    )
    assert (joined.node_count, joined.edge_count) == (5, 4)
    start = joined.nearest_node(expressway[0][1], expressway[0][0])
    assert start is not None
    assert np.isfinite(joined.node_distances(start[0])).all()


def test_bad_coordinates_are_refused_by_line_index() -> None:
    with pytest.raises(ValueError, match=r"line 1: coordinates must be WGS84"):
        StreetNetwork.from_lines([[lonlat(0, 0), lonlat(0, 100)], [(39.93, 216.45), (39.9, 116.4)]])
    with pytest.raises(ValueError, match=r"line 0: vertices must be \(lon, lat\) pairs"):
        StreetNetwork.from_lines([[(116.45, 39.93, 0.0, 1.0), (116.46, 39.93, 0.0, 1.0)]])


# Snapping


def east_west_street() -> StreetNetwork:
    return StreetNetwork.from_lines([[lonlat(x, 0) for x in range(-2000, 2001, 100)]])


def test_the_walk_to_the_street_counts_against_the_budget() -> None:
    network = east_west_street()
    catchments = walking(network, max_snap_m=200.0)
    lon, lat = lonlat(0, -80)

    reach = catchments.reach(lat, lon)

    assert reach is not None
    assert reach.snap_m == pytest.approx(geodesic((lon, lat), lonlat(0, 0)))
    assert reach.snap_m == pytest.approx(80.0, abs=1.0)
    at = {x: network.nearest_node(*lonlat(x, 0)[::-1]) for x in (0, 1100, 1200, -1100, -1200)}
    distances = {x: reach.node_distances_m[found[0]] for x, found in at.items() if found}
    assert distances[0] == pytest.approx(reach.snap_m)
    assert distances[1100] == pytest.approx(reach.snap_m + geodesic(lonlat(0, 0), lonlat(1100, 0)))
    assert distances[-1100] < BUDGET_M
    assert math.isinf(distances[1200])  # 80 + 1,200 m is past the 1,250 m budget
    assert math.isinf(distances[-1200])


def test_a_station_beyond_the_snap_limit_gets_only_straight_line_cells() -> None:
    network = east_west_street()
    lon, lat = lonlat(300, -500)
    own = GRID.cell_of(lat, lon)

    off = walking(network, max_snap_m=300.0)
    assert off.reach(lat, lon) is None
    assert off.cells(lat, lon) == CircleCatchments(GRID, BUDGET_M).cells(lat, lon) | {own}

    on = walking(network, max_snap_m=600.0)
    assert on.reach(lat, lon) is not None
    assert on.cells(lat, lon) != off.cells(lat, lon)
    # On the network, the 500 m walk to the street leaves 750 m along it: nothing far south.
    south_lat = lonlat(0, -700)[1]
    assert not any(GRID.centre(cell)[0] < south_lat for cell in on.cells(lat, lon))


def test_an_empty_network_leaves_every_station_off_it() -> None:
    network = StreetNetwork.from_lines([])
    assert (network.node_count, network.edge_count) == (0, 0)
    lon, lat = lonlat(0, 0)
    catchments = walking(network)
    assert catchments.reach(lat, lon) is None
    assert catchments.cells(lat, lon) == CircleCatchments(GRID, BUDGET_M).cells(lat, lon)


def test_cells_are_cached_per_location() -> None:
    catchments = walking(east_west_street())
    lon, lat = lonlat(10, 10)
    assert catchments.cells(lat, lon) is catchments.cells(lat, lon)


@pytest.mark.parametrize(
    ("field", "value"),
    [("speed_kmh", 0.0), ("minutes", -1.0), ("max_snap_m", -5.0), ("sample_step_m", 0.0)],
)
def test_nonsense_parameters_are_refused(field: str, value: float) -> None:
    params = {"speed_kmh": WALK_KMH, "minutes": MINUTES, "max_snap_m": 200.0}
    params[field] = value
    with pytest.raises(ValueError, match=field):
        NetworkCatchments(GRID, east_west_street(), **params)
