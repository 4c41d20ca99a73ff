"""Checks on polygon coordinates as they arrive (GeoJSON), before GEOS ever sees them: GEOS
refuses NaN and infinity with an exception, and a number too large for a float never
becomes one. Each problem names where it is, as `coordinates[ring][vertex]`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MIN_RING_POSITIONS = 4  # a closed ring: three corners and the first again
LON_RANGE = (-180.0, 180.0)
LAT_RANGE = (-90.0, 90.0)


def check_polygon_coordinates(geometry: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first coordinate of a Polygon or MultiPolygon that is not
    a finite longitude/latitude in range, or a ring that is too short."""
    coordinates = geometry.get("coordinates")
    if geometry.get("type") == "MultiPolygon":
        if not isinstance(coordinates, list) or not coordinates:
            raise ValueError("coordinates: must be a non-empty array of polygons")
        for index, polygon in enumerate(coordinates):
            _check_polygon(polygon, f"coordinates[{index}]")
    else:
        _check_polygon(coordinates, "coordinates")


def _check_polygon(rings: Any, where: str) -> None:
    if not isinstance(rings, list) or not rings:
        raise ValueError(f"{where}: must be a non-empty array of rings")
    for r, ring in enumerate(rings):
        if not isinstance(ring, list) or len(ring) < MIN_RING_POSITIONS:
            raise ValueError(f"{where}[{r}]: a ring needs at least {MIN_RING_POSITIONS} positions")
        for v, position in enumerate(ring):
            _check_position(position, f"{where}[{r}][{v}]")


def _check_position(position: Any, where: str) -> None:
    if not isinstance(position, list) or len(position) not in (2, 3):
        raise ValueError(f"{where}: a position is [longitude, latitude] (and optional height)")
    for value, name, (low, high) in zip(
        position[:2], ("longitude", "latitude"), (LON_RANGE, LAT_RANGE), strict=True
    ):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: the {name} must be a number")
        try:
            number = float(value)
        except OverflowError:
            raise ValueError(f"{where}: the {name} is too large") from None
        if not math.isfinite(number):
            raise ValueError(f"{where}: the {name} must be finite")
        if not low <= number <= high:
            raise ValueError(f"{where}: the {name} must be within {low:g}..{high:g}")
