"""Datum conversion between WGS84, GCJ-02 and BD-09.

Chinese map apps do not hand out WGS84: Amap, Tencent and Apple Maps in China give GCJ-02 (WGS84
plus a deliberate, position-dependent offset of a few hundred metres), and Baidu gives BD-09
(GCJ-02 with a further shift). Stations are stored in WGS84, so every importer converts here.

The forward direction (WGS84 to GCJ-02/BD-09) uses the published closed-form formulas on the
Krasovsky 1940 ellipsoid. There is no closed form for the way back, and the common one-step
approximation is off by metres; we solve it instead by fixed-point iteration on the forward
transform, which converges because the offset changes slowly with position. Round trips agree
to better than `INVERSE_TOLERANCE_DEG` (1e-9 degrees, about 0.1 mm), far inside the 1e-6 degree
(~0.1 m) the rest of the system relies on.

The offsets only apply inside China. Outside the usual bounding box every conversion is the
identity, as map apps serve unshifted coordinates there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import numpy as np
import shapely
import shapely.geometry

# Krasovsky 1940 ellipsoid, as used by the published GCJ-02 formulas.
KRASOVSKY_SEMI_MAJOR_M = 6378245.0
KRASOVSKY_ECCENTRICITY_SQ = 0.00669342162296594323

# Origin of the GCJ-02 polynomial terms.
GCJ_ORIGIN_LON_DEG = 105.0
GCJ_ORIGIN_LAT_DEG = 35.0

# The bounding box inside which GCJ-02 offsets apply (the conventional one).
CHINA_MIN_LON_DEG = 72.004
CHINA_MAX_LON_DEG = 137.8347
CHINA_MIN_LAT_DEG = 0.8293
CHINA_MAX_LAT_DEG = 55.8271

# BD-09 constants: Baidu's rotation/scaling factor and its fixed offset from GCJ-02.
BD_X_PI = math.pi * 3000.0 / 180.0
BD_RADIUS_WOBBLE_DEG = 0.00002
BD_ANGLE_WOBBLE_RAD = 0.000003
BD_OFFSET_LON_DEG = 0.0065
BD_OFFSET_LAT_DEG = 0.006

# Iterative inverse: stop when a step moves less than this, or after this many steps.
INVERSE_TOLERANCE_DEG = 1e-9
INVERSE_MAX_ITERATIONS = 50


class Datum(StrEnum):
    """The coordinate datums a station file may use."""

    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


def in_china(lon: float, lat: float) -> bool:
    """Whether the GCJ-02 offset applies at this point (the conventional bounding box)."""
    return (
        CHINA_MIN_LON_DEG <= lon <= CHINA_MAX_LON_DEG
        and CHINA_MIN_LAT_DEG <= lat <= CHINA_MAX_LAT_DEG
    )


def _offset_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _offset_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if not in_china(lon, lat):
        return lon, lat
    x = lon - GCJ_ORIGIN_LON_DEG
    y = lat - GCJ_ORIGIN_LAT_DEG
    rad_lat = math.radians(lat)
    magic = 1.0 - KRASOVSKY_ECCENTRICITY_SQ * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    meridian_radius = (
        KRASOVSKY_SEMI_MAJOR_M * (1.0 - KRASOVSKY_ECCENTRICITY_SQ) / (magic * sqrt_magic)
    )
    parallel_radius = KRASOVSKY_SEMI_MAJOR_M / sqrt_magic * math.cos(rad_lat)
    d_lat = _offset_lat(x, y) * 180.0 / (meridian_radius * math.pi)
    d_lon = _offset_lon(x, y) * 180.0 / (parallel_radius * math.pi)
    return lon + d_lon, lat + d_lat


def _gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    if not in_china(lon, lat):
        return lon, lat
    z = math.hypot(lon, lat) + BD_RADIUS_WOBBLE_DEG * math.sin(lat * BD_X_PI)
    theta = math.atan2(lat, lon) + BD_ANGLE_WOBBLE_RAD * math.cos(lon * BD_X_PI)
    return z * math.cos(theta) + BD_OFFSET_LON_DEG, z * math.sin(theta) + BD_OFFSET_LAT_DEG


def _wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    return _gcj02_to_bd09(*_wgs84_to_gcj02(lon, lat))


_FORWARD = {
    Datum.gcj02: _wgs84_to_gcj02,
    Datum.bd09: _wgs84_to_bd09,
}


def from_wgs84(lon: float, lat: float, datum: Datum) -> tuple[float, float]:
    """WGS84 (lon, lat) in degrees to `datum`; the identity outside China."""
    datum = Datum(datum)
    if datum is Datum.wgs84:
        return lon, lat
    return _FORWARD[datum](lon, lat)


def to_wgs84(lon: float, lat: float, datum: Datum) -> tuple[float, float]:
    """(lon, lat) in `datum` back to WGS84, solved iteratively (see the module docstring).

    Each step moves the estimate by how far its forward image misses the target; the offset's
    gradient is tiny, so the error shrinks by orders of magnitude per step (3-4 steps typical).
    """
    datum = Datum(datum)
    if datum is Datum.wgs84 or not in_china(lon, lat):
        return lon, lat
    forward = _FORWARD[datum]
    est_lon, est_lat = lon, lat
    for _ in range(INVERSE_MAX_ITERATIONS):
        fwd_lon, fwd_lat = forward(est_lon, est_lat)
        step_lon, step_lat = lon - fwd_lon, lat - fwd_lat
        est_lon += step_lon
        est_lat += step_lat
        if abs(step_lon) < INVERSE_TOLERANCE_DEG and abs(step_lat) < INVERSE_TOLERANCE_DEG:
            break
    return est_lon, est_lat


def geometry_to_wgs84(geometry: Mapping[str, Any], datum: Datum) -> dict[str, Any]:
    """A GeoJSON geometry with every vertex converted from `datum` to WGS84, made valid:
    boundaries drawn on Chinese web maps arrive in GCJ-02 or BD-09."""
    shape = shapely.geometry.shape(geometry)
    if datum is not Datum.wgs84:
        shape = shapely.transform(
            shape,
            lambda xy: np.array([to_wgs84(float(x), float(y), datum) for x, y in xy]),
        )
    return shapely.geometry.mapping(shapely.make_valid(shape))
