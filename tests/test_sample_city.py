"""The generated sample district: deterministic, well-formed, and with real gaps."""

from __future__ import annotations

import re
import time
from collections import Counter

import h3
import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import shape

from demo.sample_city import SampleCity, generate_sample_city
from schemas.geography import BoundaryLevel
from schemas.stations import Amenity, StationKind

GEOD = Geod(ellps="WGS84")
REQUESTED_STATIONS = 2000
REQUESTED_SUBDISTRICTS = 40
SUBDISTRICT_COUNT_SLACK = 2
GRID_RESOLUTION = 9
DISTRICT_AREA_KM2 = 450.0
AREA_TOLERANCE = 0.05
CATCHMENT_RADIUS_M = 1000.0
MIN_UNCOVERED_DEMAND_SHARE = 0.05
# Prefilter for the brute-force distance check: wider than 1 km at Beijing's latitude.
NEIGHBOUR_BOX_LAT_DEG = 0.012
NEIGHBOUR_BOX_LON_DEG = 0.016
MIN_CAPACITY_SEATS = 4
MAX_CAPACITY_SEATS = 40
CORE_AMENITIES = (Amenity.drinking_water, Amenity.rest_seats, Amenity.phone_charging)
CORE_AMENITY_MIN_SHARE = 0.9
MAX_GENERATION_SECONDS = 3.0


@pytest.fixture(scope="module")
def city() -> SampleCity:
    return generate_sample_city(
        seed=7,
        stations=REQUESTED_STATIONS,
        subdistricts=REQUESTED_SUBDISTRICTS,
        grid_resolution=GRID_RESOLUTION,
    )


def test_same_seed_same_city(city: SampleCity) -> None:
    assert generate_sample_city(seed=7) == city


def test_other_seed_other_city(city: SampleCity) -> None:
    other = generate_sample_city(seed=8)
    assert other.stations != city.stations
    assert other.boundary != city.boundary


def test_generation_is_quick() -> None:
    started = time.perf_counter()
    generate_sample_city(seed=11)
    assert time.perf_counter() - started < MAX_GENERATION_SECONDS


def test_counts(city: SampleCity) -> None:
    assert len(city.stations) == REQUESTED_STATIONS
    assert abs(len(city.subdistricts) - REQUESTED_SUBDISTRICTS) <= SUBDISTRICT_COUNT_SLACK
    small = generate_sample_city(seed=3, stations=25, subdistricts=6)
    assert len(small.stations) == 25
    assert abs(len(small.subdistricts) - 6) <= SUBDISTRICT_COUNT_SLACK


def test_district_is_a_polygon_of_realistic_size(city: SampleCity) -> None:
    assert city.boundary.level is BoundaryLevel.district
    assert city.boundary.name == city.district
    assert city.boundary.geometry["type"] == "Polygon"
    district = shape(city.boundary.geometry)
    assert district.is_valid
    area_km2 = abs(GEOD.geometry_area_perimeter(district)[0]) / 1e6
    assert area_km2 == pytest.approx(DISTRICT_AREA_KM2, rel=AREA_TOLERANCE)
    assert district.contains(shapely.Point(116.49, 39.95))


def test_subdistricts_tile_the_district(city: SampleCity) -> None:
    names = [sub.name for sub in city.subdistricts]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Z][a-z]+( [A-Z][a-z]+)?", name) for name in names)
    assert all(sub.level is BoundaryLevel.subdistrict for sub in city.subdistricts)
    assert all(sub.parent == city.district for sub in city.subdistricts)
    district = shape(city.boundary.geometry)
    parts = [shape(sub.geometry) for sub in city.subdistricts]
    assert all(part.is_valid and not part.is_empty for part in parts)
    union = shapely.union_all(parts)
    assert union.symmetric_difference(district).area < 1e-6 * district.area


def test_stations_inside_district_and_their_subdistrict(city: SampleCity) -> None:
    district = shape(city.boundary.geometry)
    subs = {sub.name: shape(sub.geometry) for sub in city.subdistricts}
    for station in city.stations:
        point = shapely.Point(station.lon, station.lat)
        assert station.district == city.district
        assert district.contains(point), station.station_id
        assert station.subdistrict is not None
        assert subs[station.subdistrict].contains(point), station.station_id


def test_station_records_look_real(city: SampleCity) -> None:
    ids = [station.station_id for station in city.stations]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"SD-\d{4}", station_id) for station_id in ids)
    kinds = Counter(station.kind for station in city.stations)
    # Fixed sites only: a mobile unit's tour is not something a generator can make up.
    assert set(kinds) == set(StationKind) - {StationKind.mobile_unit}
    assert kinds.most_common(2)[0][0] in {
        StationKind.partner_store,
        StationKind.outdoor_worker_station,
    }
    assert all(
        MIN_CAPACITY_SEATS <= station.capacity <= MAX_CAPACITY_SEATS for station in city.stations
    )
    for amenity in CORE_AMENITIES:
        share = sum(amenity in s.amenities for s in city.stations) / len(city.stations)
        assert share >= CORE_AMENITY_MIN_SHARE, amenity
    hours = {station.opening_hours for station in city.stations}
    assert "Mo-Su 00:00-24:00" in hours
    assert all(re.fullmatch(r"Mo-(Su|Fr) \d\d:\d\d-\d\d:\d\d", h or "") for h in hours)
    assert all(station.operator for station in city.stations)
    assert len({station.name for station in city.stations}) == len(city.stations)


def test_demand_cells_unique_and_inside_the_district(city: SampleCity) -> None:
    cells = [cell.cell for cell in city.demand]
    assert len(set(cells)) == len(cells)
    assert all(h3.get_resolution(cell) == GRID_RESOLUTION for cell in cells)
    district = shape(city.boundary.geometry)
    centres = np.array([h3.cell_to_latlng(cell) for cell in cells])
    assert shapely.contains_xy(district, centres[:, 1], centres[:, 0]).all()
    # Every cell whose centre is inside is there: the count matches area / local cell area.
    area_km2 = abs(GEOD.geometry_area_perimeter(district)[0]) / 1e6
    cell_km2 = h3.cell_area(cells[0], unit="km^2")
    assert len(cells) == pytest.approx(area_km2 / cell_km2, rel=0.02)


def test_demand_tagged_with_its_subdistrict(city: SampleCity) -> None:
    subs = {sub.name: shape(sub.geometry) for sub in city.subdistricts}
    for cell in city.demand:
        lat, lon = h3.cell_to_latlng(cell.cell)
        assert cell.district == city.district
        assert cell.subdistrict in subs
        assert subs[cell.subdistrict].intersects(shapely.Point(lon, lat))


def test_demand_is_positive_and_uneven(city: SampleCity) -> None:
    values = np.array([cell.demand_workers for cell in city.demand])
    assert values.sum() > 0
    assert (values >= 0).all()
    assert np.allclose(values, np.round(values, 1))
    assert values.max() > 10 * np.median(values)


def uncovered_demand_share(city: SampleCity, radius_m: float) -> float:
    """Share of demand in cells farther than `radius_m` from every station (geodesic)."""
    lon = np.array([s.lon for s in city.stations])
    lat = np.array([s.lat for s in city.stations])
    uncovered = 0.0
    total = 0.0
    for cell in city.demand:
        cell_lat, cell_lon = h3.cell_to_latlng(cell.cell)
        total += cell.demand_workers
        near = (np.abs(lat - cell_lat) < NEIGHBOUR_BOX_LAT_DEG) & (
            np.abs(lon - cell_lon) < NEIGHBOUR_BOX_LON_DEG
        )
        if near.any():
            count = int(near.sum())
            _, _, dist = GEOD.inv(
                np.full(count, cell_lon), np.full(count, cell_lat), lon[near], lat[near]
            )
            if dist.min() <= radius_m:
                continue
        uncovered += cell.demand_workers
    return uncovered / total


def test_sample_city_has_underserved_areas(city: SampleCity) -> None:
    share = uncovered_demand_share(city, CATCHMENT_RADIUS_M)
    assert share >= MIN_UNCOVERED_DEMAND_SHARE
    # Gaps, not a network that misses everything.
    assert share < 0.5


def test_prefilter_box_covers_the_catchment() -> None:
    """The neighbour box used above must contain every point within the radius."""
    lat = 39.95
    _, north, _ = GEOD.fwd(116.49, lat, 0.0, CATCHMENT_RADIUS_M)
    east, _, _ = GEOD.fwd(116.49, lat, 90.0, CATCHMENT_RADIUS_M)
    assert north - lat < NEIGHBOUR_BOX_LAT_DEG
    assert east - 116.49 < NEIGHBOUR_BOX_LON_DEG


def test_rejects_nonsense_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        generate_sample_city(stations=0)
