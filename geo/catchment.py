"""Catchments: the grid cells a worker can walk from to a station within the time limit.

Membership rule: a cell belongs to a station's catchment when the geodesic distance from the
station to the cell's centre is at most the reach (speed x time / detour factor).
"""

from __future__ import annotations

from collections.abc import Iterable

import h3
import numpy as np
from pyproj import Geod

from geo.grid import Grid

_GEOD = Geod(ellps="WGS84")
_EMPTY_RINGS_TO_STOP = 2


def geodesic_m(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Distances in metres from one point to many, on the WGS84 ellipsoid."""
    _, _, dist = _GEOD.inv(np.full_like(lons, lon), np.full_like(lats, lat), lons, lats)
    return np.asarray(dist)


class CircleCatchments:
    """Catchments as geodesic circles, cached per location (stations rarely move)."""

    def __init__(self, grid: Grid, radius_m: float) -> None:
        self.grid = grid
        self.radius_m = radius_m
        self._cache: dict[tuple[float, float], frozenset[str]] = {}

    def cells(self, lat: float, lon: float) -> frozenset[str]:
        key = (lat, lon)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = frozenset(self._compute(lat, lon))
        return found

    def _compute(self, lat: float, lon: float) -> Iterable[str]:
        # Grow ring by ring from the station's cell. Rings move outward, but hexagon rings are
        # not circles, so stop only after two rings in a row with no centre in reach.
        origin = self.grid.cell_of(lat, lon)
        inside: list[str] = []
        empty_rings = 0
        k = 0
        while empty_rings < _EMPTY_RINGS_TO_STOP:
            ring = list(h3.grid_ring(origin, k)) if k else [origin]
            centres = np.array([h3.cell_to_latlng(c) for c in ring])
            dist = geodesic_m(lat, lon, centres[:, 0], centres[:, 1])
            hits = [cell for cell, d in zip(ring, dist, strict=True) if d <= self.radius_m]
            inside.extend(hits)
            empty_rings = 0 if hits else empty_rings + 1
            k += 1
        return inside
