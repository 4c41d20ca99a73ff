"""Circle catchments against a brute-force oracle: every cell of a generous disk whose centre
lies within the radius on the WGS84 ellipsoid."""

from __future__ import annotations

import math

import h3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from geo.catchment import CircleCatchments
from geo.grid import Grid
from waystation.settings import Settings

GEOD = Geod(ellps="WGS84")

LATS = st.floats(20.0, 45.0, allow_nan=False, allow_infinity=False)
LONS = st.floats(100.0, 125.0, allow_nan=False, allow_infinity=False)


def brute_force(lat: float, lon: float, radius_m: float, resolution: int) -> set[str]:
    origin = h3.latlng_to_cell(lat, lon, resolution)
    min_edge = min(h3.edge_length(e, "m") for e in h3.origin_to_directed_edges(origin))
    k = math.ceil(radius_m / min_edge) + 3
    inside = set()
    for cell in h3.grid_disk(origin, k):
        cell_lat, cell_lon = h3.cell_to_latlng(cell)
        _, _, distance = GEOD.inv(lon, lat, cell_lon, cell_lat)
        if distance <= radius_m:
            inside.add(cell)
    # The disk must have been big enough: its outer ring lies wholly beyond the radius.
    outer = h3.grid_ring(origin, k)
    nearest_outer = min(
        GEOD.inv(lon, lat, c_lon, c_lat)[2] for c_lat, c_lon in map(h3.cell_to_latlng, outer)
    )
    assert nearest_outer > radius_m
    return inside


@settings(max_examples=60, deadline=None)
@given(lat=LATS, lon=LONS, radius_m=st.floats(150.0, 3000.0))
def test_circle_catchment_equals_brute_force(lat: float, lon: float, radius_m: float) -> None:
    catchments = CircleCatchments(Grid(), radius_m)
    cells = catchments.cells(lat, lon)
    expected = brute_force(lat, lon, radius_m, 9)
    assert cells == expected, (
        f"missing {sorted(expected - cells)}, extra {sorted(cells - expected)}"
    )
    assert all(h3.get_resolution(c) == 9 for c in cells)
    assert catchments.cells(lat, lon) is cells  # cached per location


@settings(max_examples=30, deadline=None)
@given(lat=LATS, lon=LONS, radius_m=st.floats(300.0, 2000.0), resolution=st.sampled_from([8, 10]))
def test_circle_catchment_at_other_resolutions(
    lat: float, lon: float, radius_m: float, resolution: int
) -> None:
    grid = Grid(resolution=resolution, zone_resolution=7)
    assert CircleCatchments(grid, radius_m).cells(lat, lon) == brute_force(
        lat, lon, radius_m, resolution
    )


def default_walking(lat: float, lon: float) -> frozenset[str]:
    config = Settings()
    assert config.catchment_radius_m == pytest.approx(1000.0)
    assert config.grid_resolution == 9
    grid = Grid(config.grid_resolution)
    return CircleCatchments(grid, config.catchment_radius_m).cells(lat, lon)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        pytest.param(39.92, 116.46, id="beijing-chaoyang"),
        pytest.param(31.23, 121.47, id="shanghai"),
        pytest.param(23.13, 113.26, id="guangzhou"),
        pytest.param(30.66, 104.07, id="chengdu"),
        pytest.param(30.59, 114.30, id="wuhan"),
        pytest.param(25.04, 102.71, id="kunming"),
    ],
)
def test_default_walking_catchment_has_25_to_45_cells(lat: float, lon: float) -> None:
    cells = default_walking(lat, lon)
    assert 25 <= len(cells) <= 45, len(cells)
    assert Grid().cell_of(lat, lon) in cells, "a station covers its own cell"


@settings(max_examples=50, deadline=None)
@given(lat=LATS, lon=LONS)
def test_default_walking_catchment_covers_about_a_square_kilometre_and_a_half(
    lat: float, lon: float
) -> None:
    """H3 cells at resolution 9 range from about 0.064 km2 (around 40N 123E) to 0.12 km2 in
    China, so the count varies (up to 50 cells near Dalian) while the area stays about pi."""
    cells = default_walking(lat, lon)
    area = sum(h3.cell_area(c, "km^2") for c in cells)
    assert 0.8 * math.pi <= area <= 1.2 * math.pi, (len(cells), area)
    assert 25 <= len(cells) <= 50, len(cells)
    assert Grid().cell_of(lat, lon) in cells, "a station covers its own cell"


@settings(max_examples=30, deadline=None)
@given(lat=LATS, lon=LONS, small=st.floats(150.0, 1500.0), extra=st.floats(1.0, 1500.0))
def test_a_larger_radius_never_loses_cells(
    lat: float, lon: float, small: float, extra: float
) -> None:
    grid = Grid()
    inner = CircleCatchments(grid, small).cells(lat, lon)
    outer = CircleCatchments(grid, small + extra).cells(lat, lon)
    assert inner <= outer
