"""What the repositories share for spatial queries on two backends.

PostgreSQL answers with PostGIS (ST_Intersects on geometry, ST_DWithin on geography, both on
GiST indexes). SQLite narrows rows with a plain bounding box on lon/lat columns and decides in
Python with shapely and pyproj's geodesics (GeographicLib, as PostGIS uses for geography), so
both give the same answers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import GeometryCollection, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func
from sqlalchemy.orm import Session

from store.geometry import WGS84_SRID

GEOD = Geod(ellps="WGS84")
METRES_PER_DEGREE_LAT_MIN = 110_574.0  # at the equator; more towards the poles
METRES_PER_DEGREE_LON_EQUATOR = 111_320.0
BOX_SLACK = 1.01


def on_postgis(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def pg_point(lat: float, lon: float) -> Any:
    """A WGS84 point as a PostGIS expression."""
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), WGS84_SRID)


def pg_geography(expression: Any) -> Any:
    """`geography(x)`: spelled as the expression indexes are, so that they are used."""
    return func.geography(expression)


def degree_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) surely holding every point within `radius_m`."""
    dlat = radius_m / METRES_PER_DEGREE_LAT_MIN * BOX_SLACK
    edge_lat = min(89.999, abs(lat) + dlat)
    dlon = radius_m / (METRES_PER_DEGREE_LON_EQUATOR * math.cos(math.radians(edge_lat)))
    dlon = min(180.0, dlon * BOX_SLACK)
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def geodesic_m(lat: float, lon: float, lats: Any, lons: Any) -> np.ndarray:
    """Distances on the WGS84 ellipsoid from one point to many, in metres."""
    lats_a = np.asarray(lats, dtype=float)
    lons_a = np.asarray(lons, dtype=float)
    _, _, distance = GEOD.inv(np.full_like(lons_a, lon), np.full_like(lats_a, lat), lons_a, lats_a)
    return np.asarray(distance)


def multipolygon(geometry: BaseGeometry) -> MultiPolygon:
    """Outlines are stored as MultiPolygons whatever the file had. Repairing an outline
    (`make_valid`) can leave a collection with stray lines or points: only its area counts."""
    if isinstance(geometry, MultiPolygon):
        return geometry
    if isinstance(geometry, Polygon):
        return MultiPolygon([geometry])
    if isinstance(geometry, GeometryCollection):
        parts = [p for p in shapely.get_parts(geometry) if isinstance(p, Polygon | MultiPolygon)]
        polygons = [q for p in parts for q in shapely.get_parts(p)]
        if polygons:
            return MultiPolygon(polygons)
    raise ValueError(f"an outline must be a Polygon or MultiPolygon, not {geometry.geom_type}")


def intersecting(area: BaseGeometry, geometries: Any) -> np.ndarray:
    """Which of `geometries` intersect `area` (the SQLite side of ST_Intersects)."""
    shapely.prepare(area)
    return np.asarray(shapely.intersects(area, geometries), dtype=bool)
