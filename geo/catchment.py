"""Catchments: the grid cells a worker can walk from to a station within the time limit.

Membership rule: a cell belongs to a station's catchment when the geodesic distance (WGS84)
from the station to the cell's centre is at most the reach (speed x time / detour factor).

How a catchment is found (about 0.13 ms for 1 km at resolution 9; `many` does a city's worth
several times faster per station):

1. Candidates: one H3 disk of `k` rings around the station's cell, with `k` large enough that
   no cell outside it can be in reach. Ring `j` of a regular hexagon grid with edge `e` lies on
   a hexagon whose sides are `1.5 j e` from the centre cell's centre. H3 cells are near-regular:
   sampled across the globe and resolutions 7-11 (pentagon neighbourhoods included), ring `j`
   centres stay at least `0.89 x 1.5 j e` from the centre cell's, with `e` the edge of a regular
   hexagon of the centre cell's area. We assume only `0.75 x 1.5 j e` (`_RING_SPACING_SAFETY`)
   and add the station's offset from its cell's centre, so ring `k + 1` and beyond are out of
   reach.
   A disk that contains a pentagon (fewer cells than a full disk) is handled by growing rings
   one at a time until two in a row have no centre in reach.
2. Distances: a local flat-earth approximation on the WGS84 ellipsoid settles every centre
   that is clearly inside or clearly outside. Its relative error grows with distance, about
   8e-7 per km (measured: under 5e-5 at 60 km, twice the longest radius it is used for, up to
   70 degrees of latitude). Centres within `_APPROX_RELATIVE_BAND` of the radius (plus
   `_APPROX_ABSOLUTE_BAND_M`), at least twenty times that error, get the exact geodesic, so the
   rule above is applied exactly. Beyond those limits (long radii, polar stations) every
   candidate gets the exact geodesic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, compress
from typing import Protocol

import h3
import h3.api.basic_int as h3_int
import h3.api.numpy_int as h3_np
import numpy as np
from pyproj import Geod

from geo.cell_bands import FULL_TURN_DEG, CellBands, expand_runs, turn
from geo.grid import Grid

_GEOD = Geod(ellps="WGS84")
_EMPTY_RINGS_TO_STOP = 2

# Candidate disk: how much of a regular grid's ring spacing we rely on (measured: >= 0.89).
_RING_SPACING_SAFETY = 0.75
_HEXAGON_AREA_PER_EDGE_SQ = 1.5 * math.sqrt(3.0)  # area of a regular hexagon / edge^2

# Approximate distances: where they are trusted, and how close to the radius a centre must be
# to get the exact geodesic anyway.
_APPROX_MAX_RADIUS_M = 30_000.0
_APPROX_MAX_ABS_LAT_DEG = 70.0
_APPROX_RELATIVE_BAND = 1e-3
_APPROX_ABSOLUTE_BAND_M = 0.01

# WGS84, for the radii of curvature of the approximation.
_WGS84_A_M = 6_378_137.0
_WGS84_F = 1.0 / 298.257223563
_WGS84_E2 = _WGS84_F * (2.0 - _WGS84_F)

# `reach`: distances on the sphere whose radius is the ellipsoid's largest radius of curvature
# (a^2 / b, at the poles) are never shorter than on the ellipsoid, and at most a^2 / b over its
# smallest radius of curvature (a (1 - e^2), meridional at the equator) longer.
_WGS84_MAX_CURVATURE_RADIUS_M = 6_399_593.6258
_SPHERE_OVER_ELLIPSOID = _WGS84_MAX_CURVATURE_RADIUS_M / 6_335_439.3271
_ROUNDING = 1e-9  # relative: float error of the chords and their bounds

# `reach` sorts the given cells into latitude bands this fraction of the candidate reach high
# (lower bands: fewer cells searched that are out of reach, more runs to search).
_BAND_HEIGHT_PER_REACH = 0.5
# `reach` works through this many points at a time, nearby points together: the arrays of
# their pairs then stay in the CPU's cache, and the allocator reuses their memory rather than
# handing it back to the system and faulting it in again (which costs more than the sums).
_CHUNK_POINTS = 1024
_PACKED_BITS = 63  # an int64 key holds a cell and an owner index side by side

# `many` works through this many stations at a time, nearby stations together.
_BATCH_STATIONS = 4096


def geodesic_m(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Distances in metres from one point to many, on the WGS84 ellipsoid."""
    _, _, dist = _GEOD.inv(np.full_like(lons, lon), np.full_like(lats, lat), lons, lats)
    return np.asarray(dist)


def _metres_per_degree(lat: float) -> tuple[float, float]:
    """(east before the cosine of latitude, north): the WGS84 radii of curvature at `lat`,
    per degree."""
    sin_lat = math.sin(math.radians(lat))
    w_sq = 1.0 - _WGS84_E2 * sin_lat * sin_lat
    w = math.sqrt(w_sq)
    per_rad = math.pi / 180.0
    return _WGS84_A_M / w * per_rad, _WGS84_A_M * (1.0 - _WGS84_E2) / (w_sq * w) * per_rad


def _metres_per_degree_many(lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_metres_per_degree` of many latitudes at once."""
    sin_lat = np.sin(np.radians(lats))
    w_sq = 1.0 - _WGS84_E2 * sin_lat * sin_lat
    w = np.sqrt(w_sq)
    per_rad = math.pi / 180.0
    return _WGS84_A_M / w * per_rad, _WGS84_A_M * (1.0 - _WGS84_E2) / (w_sq * w) * per_rad


def approx_sq_m(
    lat: float | np.ndarray,
    lon: float | np.ndarray,
    lats: np.ndarray,
    lons: np.ndarray,
    metres_per_degree: tuple[float | np.ndarray, float | np.ndarray],
) -> np.ndarray:
    """Approximate squared distances in square metres from `lat, lon` (one point, or one per
    target) to nearby points: flat earth with the WGS84 radii of curvature at the origin
    (`metres_per_degree`, from `_metres_per_degree`) and the cosine of the mid-latitude.
    The distance is off by about 8e-7 of itself per km (to 70 degrees of latitude)."""
    east_per_deg, north_per_deg = metres_per_degree
    dlat = lats - lat
    dlon = (lons - lon + 180.0) % 360.0 - 180.0
    east = dlon * east_per_deg * np.cos(dlat * (math.pi / 360.0) + np.radians(lat))
    north = dlat * north_per_deg
    return east * east + north * north


def _approx_one_m(
    lat: float,
    lon: float,
    other_lat: float,
    other_lon: float,
    metres_per_degree: tuple[float, float],
) -> float:
    """The distance `approx_sq_m` approximates, for one pair of points."""
    east_per_deg, north_per_deg = metres_per_degree
    dlat = other_lat - lat
    dlon = (other_lon - lon + 180.0) % 360.0 - 180.0
    east = dlon * east_per_deg * math.cos(math.radians(lat + 0.5 * dlat))
    return math.hypot(east, dlat * north_per_deg)


@dataclass(frozen=True)
class CatchmentMembers:
    """Catchments as flat arrays: pair `i` says cell `cells[i]` (an H3 index as an integer)
    is in the catchment of point `owners[i]`."""

    owners: np.ndarray  # int64 indexes into the points asked for
    cells: np.ndarray  # int64 H3 indexes


class Catchments(Protocol):
    """What the processors need of a catchment model: cells per station location, cached."""

    def cells(self, lat: float, lon: float) -> frozenset[str]: ...

    def many(self, points: Sequence[tuple[float, float]]) -> list[frozenset[str]]: ...


def _approx_sq_m_turned(
    dlat: np.ndarray,
    dlon: np.ndarray,
    east_cos: np.ndarray,
    east_sin: np.ndarray,
    north_per_deg: np.ndarray,
) -> np.ndarray:
    """`approx_sq_m` of pairs whose differences of latitude and longitude (in degrees, the
    latter up to whole turns) are already taken, given for each pair the origin's east
    metres per degree times the cosine and the sine of its latitude: the same approximation
    without a trigonometric function or a remainder per pair. The cosine of the
    mid-latitude comes from the origin's and short series of half the difference, whose
    first omitted terms are below 1e-12 of the result at 30 km."""
    dlon = dlon - FULL_TURN_DEG * np.rint(dlon / FULL_TURN_DEG)
    half = dlat * (math.pi / 360.0)
    square = half * half
    east = dlon * (
        east_cos * (1.0 - square * (0.5 - square / 24.0)) - east_sin * half * (1.0 - square / 6.0)
    )
    north = dlat * north_per_deg
    return east * east + north * north


def _by_cell(owners: list[np.ndarray], cells: list[np.ndarray], points: int) -> CatchmentMembers:
    """The pairs (in parts) in order of cell, then owner: one sort of a packed key, written
    part by part into one array, rather than an argsort and two gathers."""
    owner_bits = max(points - 1, 1).bit_length()
    largest = max((int(part.max()) for part in cells if part.size), default=0)
    if largest >= 1 << (_PACKED_BITS - owner_bits):
        owner, cell = np.concatenate(owners), np.concatenate(cells)
        order = np.lexsort((owner, cell))
        return CatchmentMembers(owner[order].astype(np.int64), cell[order].astype(np.int64))
    packed = np.empty(sum(part.size for part in cells), np.int64)
    done = 0
    for owner, cell in zip(owners, cells, strict=True):
        part = packed[done : done + cell.size]
        np.left_shift(cell, owner_bits, out=part)
        np.bitwise_or(part, owner, out=part)
        done += cell.size
    packed.sort()
    owner = packed & ((1 << owner_bits) - 1)
    return CatchmentMembers(owner, np.right_shift(packed, owner_bits, out=packed))


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

    def many(self, points: Sequence[tuple[float, float]]) -> list[frozenset[str]]:
        """Catchments of many (lat, lon) points, e.g. a whole network at start-up; the same
        sets `cells` gives, through the same cache. Neighbouring stations share most candidate
        cells, so each cell's centre is computed once per batch and the distances for a batch
        are computed in one go."""
        pending = sorted({(lat, lon) for lat, lon in points} - self._cache.keys())
        if pending:
            origins = [
                h3_int.latlng_to_cell(lat, lon, self.grid.resolution) for lat, lon in pending
            ]
            # Batches of nearby stations: H3 indexes of one resolution sort parent by parent.
            order = sorted(range(len(pending)), key=origins.__getitem__)
            for start in range(0, len(order), _BATCH_STATIONS):
                batch = order[start : start + _BATCH_STATIONS]
                self._compute_batch([pending[i] for i in batch], [origins[i] for i in batch])
        return [self._cache[(lat, lon)] for lat, lon in points]

    def _disk_radius(
        self, lat: float, lon: float, origin: int, metres_per_degree: tuple[float, float]
    ) -> int:
        """Rings around `origin` that hold every cell centre within the radius of the point."""
        origin_lat, origin_lon = h3_int.cell_to_latlng(origin)
        offset = _approx_one_m(lat, lon, origin_lat, origin_lon, metres_per_degree)
        edge = math.sqrt(h3_int.cell_area(origin, unit="m^2") / _HEXAGON_AREA_PER_EDGE_SQ)
        return max(0, math.floor((self.radius_m + offset) / (1.5 * _RING_SPACING_SAFETY * edge)))

    def _approx_is_exact_enough(self, lat: float) -> bool:
        return self.radius_m <= _APPROX_MAX_RADIUS_M and abs(lat) <= _APPROX_MAX_ABS_LAT_DEG

    def _within(
        self,
        lat: float | np.ndarray,
        lon: float | np.ndarray,
        dist_sq: np.ndarray,
        lats: np.ndarray,
        lons: np.ndarray,
    ) -> np.ndarray:
        """Which approximate squared distances are within the radius, settling the close
        calls with the exact geodesic."""
        radius = self.radius_m
        band = _APPROX_RELATIVE_BAND * radius + _APPROX_ABSOLUTE_BAND_M
        surely_in = max(radius - band, 0.0) ** 2
        inside = dist_sq <= surely_in
        unsure = np.flatnonzero((dist_sq <= (radius + band) ** 2) & ~inside)
        if unsure.size:
            from_lat = np.broadcast_to(lat, dist_sq.shape)[unsure]
            from_lon = np.broadcast_to(lon, dist_sq.shape)[unsure]
            _, _, exact = _GEOD.inv(from_lon, from_lat, lons[unsure], lats[unsure])
            inside[unsure] = np.asarray(exact) <= radius
        return inside

    def _compute(self, lat: float, lon: float) -> list[str]:
        origin = h3_int.latlng_to_cell(lat, lon, self.grid.resolution)
        per_deg = _metres_per_degree(lat)
        k = self._disk_radius(lat, lon, origin, per_deg)
        disk = h3_np.grid_disk(origin, k).tolist()
        if len(disk) != 1 + 3 * k * (k + 1):
            return self._compute_by_rings(lat, lon)
        centres = np.fromiter(
            chain.from_iterable(map(h3_int.cell_to_latlng, disk)), float, count=2 * len(disk)
        )
        lats, lons = centres[0::2], centres[1::2]
        if self._approx_is_exact_enough(lat):
            dist_sq = approx_sq_m(lat, lon, lats, lons, per_deg)
            inside = self._within(lat, lon, dist_sq, lats, lons)
        else:
            inside = geodesic_m(lat, lon, lats, lons) <= self.radius_m
        # h3 spells an index as lower-case hex, exactly as `h3.int_to_str` does.
        return [format(cell, "x") for cell in compress(disk, inside.tolist())]

    def members(self, points: Sequence[tuple[float, float]]) -> CatchmentMembers:
        """Every (point, cell) pair of the points' catchments as flat arrays, without making
        a set or a string per catchment: what a from-scratch coverage build needs. The same
        membership rule as `cells` (points it cannot batch, near pentagons or beyond the
        approximation's limits, go through `cells`). Nothing is cached."""
        if not points:
            return CatchmentMembers(np.zeros(0, np.int64), np.zeros(0, np.int64))
        resolution = self.grid.resolution
        origins = np.fromiter(
            (h3_int.latlng_to_cell(lat, lon, resolution) for lat, lon in points),
            np.uint64,
            count=len(points),
        ).astype(np.int64)  # resolution-9 indexes fit in 63 bits
        order = np.argsort(origins, kind="stable")  # nearby points together
        owners: list[np.ndarray] = []
        cells: list[np.ndarray] = []
        for start in range(0, order.size, _BATCH_STATIONS):
            batch = order[start : start + _BATCH_STATIONS]
            owner, cell, leftover = self._batch_members(
                [points[i] for i in batch.tolist()], origins[batch].tolist()
            )
            owners.append(batch[owner])
            cells.append(cell)
            for j in leftover:
                found = self.cells(*points[batch[j]])
                owners.append(np.full(len(found), batch[j], np.int64))
                cells.append(np.array([int(c, 16) for c in found], np.int64))
        return CatchmentMembers(np.concatenate(owners), np.concatenate(cells))

    def reach(
        self,
        points: Sequence[tuple[float, float]],
        cell_lats: np.ndarray,
        cell_lons: np.ndarray,
    ) -> CatchmentMembers:
        """Which of some given cells (e.g. a demand layer, by their centres) are in the
        catchment of each point, as (owner, index into the given cells) pairs in order of
        cell, then owner: the same membership rule as `cells`, found without asking H3
        anything per station or per cell. (The order lets `CoverageIndex.build` group the
        pairs by cell without sorting them again, when the given cells are ascending.)

        Candidates come from `CellBands`: runs of cells surely within the radius, and runs
        that may be, on spheres that bound the ellipsoid; between the two, the approximate
        distances (exact geodesics near the edge) decide, as for `cells`. Points beyond the
        approximation's limits go through `cells`.
        """
        if not points or not cell_lats.size:
            return CatchmentMembers(np.zeros(0, np.int64), np.zeros(0, np.int64))
        coords = np.fromiter(chain.from_iterable(points), float, count=2 * len(points))
        lats, lons = coords[0::2].copy(), coords[1::2].copy()
        fast = np.abs(lats) <= _APPROX_MAX_ABS_LAT_DEG
        if self.radius_m > _APPROX_MAX_RADIUS_M:
            fast[:] = False
        owners: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        fast_at = np.flatnonzero(fast)
        if fast_at.size:
            cell_lats = np.asarray(cell_lats, float)
            cell_lons = np.asarray(cell_lons, float)
            every = fast_at.size == len(points)
            for owner, cell in self._reach_on_sphere(
                lats[fast_at], lons[fast_at], cell_lats, cell_lons
            ):
                owners.append(owner if every else fast_at[owner])
                targets.append(cell)
        slow_at = np.flatnonzero(~fast)
        if slow_at.size:
            resolution = self.grid.resolution
            given = {
                h3_int.latlng_to_cell(lat, lon, resolution): i
                for i, (lat, lon) in enumerate(
                    zip(cell_lats.tolist(), cell_lons.tolist(), strict=True)
                )
            }
            for i in slow_at.tolist():
                hits = [
                    given[c] for c in (int(x, 16) for x in self.cells(*points[i])) if c in given
                ]
                owners.append(np.full(len(hits), i, np.int64))
                targets.append(np.array(hits, np.int64))
        return _by_cell(owners, targets, len(points))

    def _reach_on_sphere(
        self, lats: np.ndarray, lons: np.ndarray, cell_lats: np.ndarray, cell_lons: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`reach` for points within the approximation's limits: (owner, cell) pairs in
        parts, owner indexing `lats`, cell indexing `cell_lats`."""
        # The sphere of the largest radius of curvature, latitudes taken as they are, is
        # never shorter than the ellipsoid and at most _SPHERE_OVER_ELLIPSOID longer: cells
        # within the chord of the first bound are in, cells beyond that of the second are out.
        surely_m = self.radius_m * (1.0 - _ROUNDING)
        surely_chord = 2.0 * math.sin(surely_m / (2.0 * _WGS84_MAX_CURVATURE_RADIUS_M))
        widest_m = self.radius_m * _SPHERE_OVER_ELLIPSOID * (1.0 + _ROUNDING)
        widest_chord = 2.0 * math.sin(widest_m / (2.0 * _WGS84_MAX_CURVATURE_RADIUS_M))
        bands = CellBands.of(
            cell_lats, cell_lons, math.degrees(widest_chord) * _BAND_HEIGHT_PER_REACH
        )
        turned = turn(lons)
        phi = np.radians(lats)
        cos_lats = np.cos(phi)
        east_per_deg, north_per_deg = _metres_per_degree_many(lats)
        east_cos, east_sin = east_per_deg * cos_lats, east_per_deg * np.sin(phi)
        by_key = bands.point_order(lats, turned)
        found: list[tuple[np.ndarray, np.ndarray]] = []
        for chunk in np.array_split(by_key, -(-by_key.size // _CHUNK_POINTS)):
            runs = bands.runs(
                lats[chunk], turned[chunk], cos_lats[chunk], widest_chord, surely_chord
            )
            point = chunk[runs.point]
            owner, at = expand_runs(runs.inner_start, runs.inner_stop - runs.inner_start, point)
            found.append((owner, bands.order[at]))
            # Between the runs: the approximate distances (exact geodesics near the edge)
            # decide.
            owner, at = expand_runs(
                np.concatenate([runs.start, runs.inner_stop]),
                np.concatenate([runs.inner_start - runs.start, runs.stop - runs.inner_stop]),
                np.concatenate([point, point]),
            )
            from_lat, to_lat = lats[owner], bands.lats[at]
            dist_sq = _approx_sq_m_turned(
                to_lat - from_lat,
                bands.turned[at] - turned[owner],
                east_cos[owner],
                east_sin[owner],
                north_per_deg[owner],
            )
            inside = self._within(from_lat, lons[owner], dist_sq, to_lat, bands.lons[at])
            found.append((owner[inside], bands.order[at[inside]]))
        return found

    def _batch_members(
        self, points: Sequence[tuple[float, float]], origins: list[int]
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """For nearby `points` whose cells are `origins`: (owner, cell) of every member pair,
        owner indexing `points`, and the indexes of points this batch cannot do."""
        disks: list[np.ndarray] = []
        batched: list[int] = []
        per_deg: list[tuple[float, float]] = []
        leftover: list[int] = []
        for i, ((lat, lon), origin) in enumerate(zip(points, origins, strict=True)):
            if self._approx_is_exact_enough(lat):
                station_per_deg = _metres_per_degree(lat)
                k = self._disk_radius(lat, lon, origin, station_per_deg)
                disk = h3_np.grid_disk(origin, k)
                if disk.size == 1 + 3 * k * (k + 1):
                    disks.append(disk)
                    batched.append(i)
                    per_deg.append(station_per_deg)
                    continue
            leftover.append(i)
        if not batched:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), leftover
        sizes = np.array([disk.size for disk in disks])
        cells, where = np.unique(np.concatenate(disks), return_inverse=True)
        centres = np.fromiter(
            chain.from_iterable(map(h3_int.cell_to_latlng, cells.tolist())),
            float,
            count=2 * cells.size,
        )
        lats, lons = centres[0::2][where], centres[1::2][where]
        station = np.array([points[i] for i in batched])
        scales = np.array(per_deg)
        from_lat = np.repeat(station[:, 0], sizes)
        from_lon = np.repeat(station[:, 1], sizes)
        dist_sq = approx_sq_m(
            from_lat,
            from_lon,
            lats,
            lons,
            (np.repeat(scales[:, 0], sizes), np.repeat(scales[:, 1], sizes)),
        )
        inside = self._within(from_lat, from_lon, dist_sq, lats, lons)
        owner = np.repeat(np.array(batched, np.int64), sizes)[inside]
        return owner, cells[where[inside]].astype(np.int64), leftover

    def _compute_batch(self, points: Sequence[tuple[float, float]], origins: list[int]) -> None:
        """Fill the cache for `points` (not cached yet) whose cells are `origins`."""
        owner, cells, leftover = self._batch_members(points, origins)
        for i in leftover:
            self.cells(*points[i])
        if not owner.size:
            return
        # One string per cell, shared by every catchment that holds it (owner is sorted).
        unique, where = np.unique(cells, return_inverse=True)
        names = np.array([format(cell, "x") for cell in unique.tolist()], dtype=object)
        chosen = names[where].tolist()
        firsts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        bounds = np.r_[firsts, owner.size].tolist()
        done = set()
        for start, end in itertools.pairwise(bounds):
            i = int(owner[start])
            self._cache[points[i]] = frozenset(chosen[start:end])
            done.add(i)
        for i, point in enumerate(points):  # an empty catchment (no centre in reach)
            if i not in done and i not in leftover:
                self._cache[point] = frozenset()

    def _compute_by_rings(self, lat: float, lon: float) -> list[str]:
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
