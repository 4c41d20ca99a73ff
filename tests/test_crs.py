"""Datum conversion: round trips, known offsets, identity outside China."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Geod

from geo.crs import Datum, from_wgs84, in_china, to_wgs84

GEOD = Geod(ellps="WGS84")
ROUND_TRIP_TOLERANCE_M = 0.1
BEIJING_LON_DEG, BEIJING_LAT_DEG = 116.404, 39.915
BEIJING_MIN_SHIFT_M = 100.0
BEIJING_MAX_SHIFT_M = 700.0
REFERENCE_TOLERANCE_DEG = 1e-9

# Mainland China, kept clear of the bounding box edges so that a shifted point stays inside it.
china_lons = st.floats(min_value=73.5, max_value=134.8)
china_lats = st.floats(min_value=18.0, max_value=53.5)
shifted_datums = st.sampled_from([Datum.gcj02, Datum.bd09])


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    _, _, dist = GEOD.inv(a[0], a[1], b[0], b[1])
    return dist


@given(lon=china_lons, lat=china_lats, datum=shifted_datums)
def test_round_trip_inside_china_within_a_tenth_of_a_metre(
    lon: float, lat: float, datum: Datum
) -> None:
    back = to_wgs84(*from_wgs84(lon, lat, datum), datum)
    assert distance_m((lon, lat), back) < ROUND_TRIP_TOLERANCE_M


@given(lon=china_lons, lat=china_lats, datum=shifted_datums)
def test_inverse_then_forward_recovers_the_input(lon: float, lat: float, datum: Datum) -> None:
    again = from_wgs84(*to_wgs84(lon, lat, datum), datum)
    assert distance_m((lon, lat), again) < ROUND_TRIP_TOLERANCE_M


def test_gcj02_shift_in_beijing_is_a_few_hundred_metres() -> None:
    shifted = from_wgs84(BEIJING_LON_DEG, BEIJING_LAT_DEG, Datum.gcj02)
    assert distance_m((BEIJING_LON_DEG, BEIJING_LAT_DEG), shifted) > BEIJING_MIN_SHIFT_M
    assert distance_m((BEIJING_LON_DEG, BEIJING_LAT_DEG), shifted) < BEIJING_MAX_SHIFT_M


def test_matches_published_reference_values() -> None:
    """The widely used reference example: WGS84 (116.404, 39.915) in GCJ-02 and BD-09."""
    gcj = from_wgs84(BEIJING_LON_DEG, BEIJING_LAT_DEG, Datum.gcj02)
    assert gcj == pytest.approx(
        (116.41024449916938, 39.91640428150164), abs=REFERENCE_TOLERANCE_DEG
    )
    bd = from_wgs84(BEIJING_LON_DEG, BEIJING_LAT_DEG, Datum.bd09)
    back_to_gcj = to_wgs84(*bd, Datum.bd09)
    assert from_wgs84(*back_to_gcj, Datum.gcj02) == pytest.approx(gcj, abs=REFERENCE_TOLERANCE_DEG)


def test_bd09_is_further_shifted_than_gcj02() -> None:
    origin = (BEIJING_LON_DEG, BEIJING_LAT_DEG)
    gcj = from_wgs84(*origin, Datum.gcj02)
    bd = from_wgs84(*origin, Datum.bd09)
    assert distance_m(gcj, bd) > BEIJING_MIN_SHIFT_M


outside_china = st.one_of(
    st.tuples(st.floats(-180.0, 71.9), st.floats(-90.0, 90.0)),
    st.tuples(st.floats(137.9, 180.0), st.floats(-90.0, 90.0)),
    st.tuples(st.floats(-180.0, 180.0), st.floats(55.9, 90.0)),
    st.tuples(st.floats(-180.0, 180.0), st.floats(-90.0, 0.8)),
)


@given(point=outside_china, datum=st.sampled_from(list(Datum)))
def test_identity_outside_china(point: tuple[float, float], datum: Datum) -> None:
    assert not in_china(*point)
    assert from_wgs84(*point, datum) == point
    assert to_wgs84(*point, datum) == point


@given(lon=china_lons, lat=china_lats)
def test_wgs84_is_the_identity(lon: float, lat: float) -> None:
    assert from_wgs84(lon, lat, Datum.wgs84) == (lon, lat)
    assert to_wgs84(lon, lat, Datum.wgs84) == (lon, lat)


def test_datum_accepts_its_string_value() -> None:
    assert to_wgs84(BEIJING_LON_DEG, BEIJING_LAT_DEG, Datum("gcj02")) == to_wgs84(
        BEIJING_LON_DEG, BEIJING_LAT_DEG, Datum.gcj02
    )
