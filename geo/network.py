"""Road-network catchments: the grid cells a worker reaches along the streets within the time limit.

Membership rule: a cell is in a network catchment when the network reaches a point inside it
within the time budget, sampled every `sample_step_m` metres (25 m by default) along each street
segment; the station's own cell is always in. The budget is speed x time (5 km/h for 15 minutes
is 1,250 m) with no detour factor: the network is the detour.

How the pieces fit:

- The network (`StreetNetwork`) is an undirected graph built from WGS84 line geometries. Vertices
  that coincide once rounded to `NODE_PRECISION_DEG` (1e-7 degrees, about 1 cm) are one node, and
  consecutive vertices of a line are joined by an edge weighted by its geodesic length on the
  WGS84 ellipsoid. Lines meet only where they share a vertex: two lines that cross without one
  do not connect, which is right for an expressway passing over a street (no junction) and wrong
  for street data that was never split at its junctions (node such data first). Every edge is
  walkable both ways; leave out what workers cannot walk (motorways, private roads) before
  building.
- A station joins the network at its nearest node, in a straight line, and that leg counts
  against the budget: a station 80 m from the nearest node starts 80 m down. A station whose
  nearest node is farther than `max_snap_m` is not on the network; its catchment is the cells
  whose centre lies within the budget in a straight line (the `CircleCatchments` rule, with no
  detour factor), plus its own cell.
- From the joining node, shortest-path distances are taken with Dijkstra, cut off at the budget.
- Each street segment (u, v) of length L is cut into n = ceil(L / sample_step_m) equal pieces
  (at least one); the cut points and both ends are its samples. A sample t metres from u is
  reached when min(d(u) + t, d(v) + L - t) is within the budget, d being the travel distance from
  the station to a node. Samples are interpolated linearly in longitude and latitude, which at
  street scale departs from the geodesic by millimetres.

Sampling means a cell that the reach enters by less than one sample spacing (at most
`sample_step_m`) can be missed; keep the step well under the cell edge (about 170 m at H3
resolution 9). The straight leg from a station to its node is not sampled; with a `max_snap_m`
of the order of a cell edge it crosses the station's own cell and the node's, both of which are in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyproj import Geod
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geo.catchment import CircleCatchments, geodesic_m
from geo.grid import Grid

# Vertices closer than this (after rounding each coordinate to a multiple of it) are one node.
NODE_PRECISION_DEG = 1e-7

_GEOD = Geod(ellps="WGS84")
_WGS84_SEMI_MAJOR_M = 6378137.0
_WGS84_FLATTENING = 1 / 298.257223563
_WGS84_ECCENTRICITY_SQ = _WGS84_FLATTENING * (2 - _WGS84_FLATTENING)
# Packing a rounded (lon, lat) into one int64: latitude keys span under 2**31.
_LAT_KEY_BITS = 31
_LAT_KEY_OFFSET = round(90 / NODE_PRECISION_DEG)
_LON_KEY_OFFSET = round(180 / NODE_PRECISION_DEG)
_LINE_TYPES = ("LineString", "MultiLineString")


def _geocentric(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Earth-centred (x, y, z) in metres on the WGS84 ellipsoid, one row per point.

    The straight-line (chord) distance between two such points is never longer than the geodesic
    between them and agrees with it to well under a millimetre at street scale, so a KD-tree over
    these finds nearest nodes anywhere on Earth with no local projection to choose.
    """
    phi = np.radians(lat)
    lam = np.radians(lon)
    sin_phi = np.sin(phi)
    n = _WGS84_SEMI_MAJOR_M / np.sqrt(1 - _WGS84_ECCENTRICITY_SQ * sin_phi**2)
    return np.column_stack(
        (
            n * np.cos(phi) * np.cos(lam),
            n * np.cos(phi) * np.sin(lam),
            n * (1 - _WGS84_ECCENTRICITY_SQ) * sin_phi,
        )
    )


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _line_coords(line: Any, where: str) -> np.ndarray | None:
    """A line's vertices as an (n, 2) array of (lon, lat), or None when it has fewer than two."""
    try:
        coords = np.asarray(line, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: vertices must be (lon, lat) pairs of numbers") from exc
    if coords.size == 0:
        return None
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"{where}: vertices must be (lon, lat) pairs of numbers")
    if not np.isfinite(coords).all():
        raise ValueError(f"{where}: coordinates must be finite numbers")
    if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
        raise ValueError(
            f"{where}: coordinates must be WGS84 (lon, lat) in degrees, "
            "lon within [-180, 180] and lat within [-90, 90]"
        )
    return coords if len(coords) >= 2 else None


def _geometry_lines(geometry: Any, where: str) -> list[np.ndarray]:
    """The lines of a LineString or MultiLineString; any other geometry is a ValueError."""
    gtype = geometry.get("type") if isinstance(geometry, Mapping) else None
    if gtype not in _LINE_TYPES:
        found = "no geometry" if geometry is None else f"a {gtype or 'malformed'} geometry"
        raise ValueError(f"{where} has {found}: only LineString and MultiLineString are streets")
    lines = geometry.get("coordinates")
    if gtype == "LineString":
        lines = [lines]
    if not isinstance(lines, list):
        raise ValueError(f"{where}: {gtype} has no coordinates")
    found_lines = []
    for part, line in enumerate(lines):
        if not isinstance(line, list):
            raise ValueError(f"{where}: {gtype} coordinates must be lists of positions")
        # Positions may carry an altitude; only (lon, lat) matters here.
        trimmed = [p[:2] if isinstance(p, list | tuple) else p for p in line]
        label = where if gtype == "LineString" else f"{where} part {part}"
        coords = _line_coords(trimmed, label)
        if coords is not None:
            found_lines.append(coords)
    return found_lines


class StreetNetwork:
    """An undirected street graph: nodes where line vertices coincide, edges between consecutive
    vertices weighted by geodesic length in metres. Built once; many catchments share it.

    Lines that cross without a shared vertex are not connected (an expressway over a street has
    no junction). Coordinates are WGS84; convert GCJ-02 or BD-09 data first (`geo.crs`).
    """

    def __init__(
        self, nodes_lonlat: np.ndarray, edge_nodes: np.ndarray, edge_length_m: np.ndarray
    ) -> None:
        """Use `from_lines` or `from_geojson`; this takes already deduplicated arrays."""
        self.nodes_lonlat = _read_only(np.asarray(nodes_lonlat, dtype=float).reshape(-1, 2))
        self.edge_nodes = _read_only(np.asarray(edge_nodes, dtype=np.int64).reshape(-1, 2))
        self.edge_length_m = _read_only(np.asarray(edge_length_m, dtype=float).reshape(-1))
        n = len(self.nodes_lonlat)
        u, v = self.edge_nodes[:, 0], self.edge_nodes[:, 1]
        # Both directions stored: Dijkstra then runs as directed, with no transpose per query.
        self._matrix = csr_matrix(
            (np.concatenate((self.edge_length_m, self.edge_length_m)), (np.r_[u, v], np.r_[v, u])),
            shape=(n, n),
        )
        self._tree = (
            cKDTree(_geocentric(self.nodes_lonlat[:, 1], self.nodes_lonlat[:, 0])) if n else None
        )

    @classmethod
    def from_lines(cls, lines: Iterable[Sequence[tuple[float, float]]]) -> StreetNetwork:
        """Build from lines, each a sequence of (lon, lat) vertices in WGS84 degrees.

        Lines with fewer than two vertices, and steps between coinciding vertices, add nothing.
        """
        chunks = []
        for index, line in enumerate(lines):
            coords = _line_coords(line, f"line {index}")
            if coords is not None:
                chunks.append(coords)
        return cls._build(chunks)

    @classmethod
    def from_geojson(cls, document: Mapping[str, Any]) -> StreetNetwork:
        """Build from a GeoJSON FeatureCollection or GeometryCollection of LineString and
        MultiLineString geometries (WGS84, as RFC 7946 requires). Anything else is a ValueError
        that names the offending feature or geometry by its index."""
        if not isinstance(document, Mapping):
            raise ValueError("a street network must be a GeoJSON object")
        kind = document.get("type")
        if kind == "FeatureCollection":
            items, label = document.get("features"), "feature"
        elif kind == "GeometryCollection":
            items, label = document.get("geometries"), "geometry"
        else:
            raise ValueError(
                f"a street network must be a FeatureCollection or GeometryCollection, not {kind!r}"
            )
        if not isinstance(items, list):
            raise ValueError(f"{kind} has no list of {label}s")
        chunks = []
        for index, item in enumerate(items):
            where = f"{label} {index}"
            if label == "feature":
                if not isinstance(item, Mapping) or item.get("type") != "Feature":
                    raise ValueError(f"{where}: not a GeoJSON Feature")
                geometry = item.get("geometry")
            else:
                geometry = item
            chunks.extend(_geometry_lines(geometry, where))
        return cls._build(chunks)

    @classmethod
    def _build(cls, chunks: list[np.ndarray]) -> StreetNetwork:
        if not chunks:
            return cls(np.empty((0, 2)), np.empty((0, 2), dtype=np.int64), np.empty(0))
        coords = np.concatenate(chunks)
        ends = np.cumsum([len(c) for c in chunks])
        steps = np.ones(len(coords), dtype=bool)  # vertex i steps on to vertex i + 1 ...
        steps[ends - 1] = False  # ... unless it ends its line
        step_from = np.flatnonzero(steps)

        keys = np.rint(coords / NODE_PRECISION_DEG).astype(np.int64)
        packed = ((keys[:, 0] + _LON_KEY_OFFSET) << _LAT_KEY_BITS) | (keys[:, 1] + _LAT_KEY_OFFSET)
        _, first_seen, vertex_node = np.unique(packed, return_index=True, return_inverse=True)
        vertex_node = vertex_node.reshape(-1)
        node_coords = coords[first_seen]

        a, b = vertex_node[step_from], vertex_node[step_from + 1]
        keep = a != b
        lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
        pairs = np.unique(lo * len(node_coords) + hi)
        lo, hi = pairs // len(node_coords), pairs % len(node_coords)

        used = np.unique(np.concatenate((lo, hi)))  # a node with no edge is no junction
        lo, hi = np.searchsorted(used, lo), np.searchsorted(used, hi)
        nodes = node_coords[used]
        _, _, length = _GEOD.inv(nodes[lo, 0], nodes[lo, 1], nodes[hi, 0], nodes[hi, 1])
        return cls(nodes, np.column_stack((lo, hi)), np.asarray(length, dtype=float))

    @property
    def node_count(self) -> int:
        return len(self.nodes_lonlat)

    @property
    def edge_count(self) -> int:
        return len(self.edge_nodes)

    def nearest_node(self, lat: float, lon: float) -> tuple[int, float] | None:
        """The node nearest to a point and its geodesic distance in metres; None if empty."""
        if self._tree is None:
            return None
        point = _geocentric(np.array([lat]), np.array([lon]))[0]
        _, index = self._tree.query(point)
        node_lon, node_lat = self.nodes_lonlat[index]
        best = float(geodesic_m(lat, lon, np.array([node_lat]), np.array([node_lon]))[0])
        # A chord is never longer than the geodesic, so every node geodesically nearer than
        # `best` lies within a chord ball of that radius: re-rank those few exactly.
        candidates = np.asarray(self._tree.query_ball_point(point, best + 1e-6), dtype=np.int64)
        if len(candidates) > 1:
            dist = geodesic_m(
                lat, lon, self.nodes_lonlat[candidates, 1], self.nodes_lonlat[candidates, 0]
            )
            pick = int(np.argmin(dist))
            return int(candidates[pick]), float(dist[pick])
        return int(index), best

    def node_distances(self, source: int, limit_m: float = math.inf) -> np.ndarray:
        """Shortest-path metres from `source` to every node; inf when farther than `limit_m`
        or not connected."""
        return dijkstra(self._matrix, directed=True, indices=source, limit=limit_m)


@dataclass(frozen=True)
class NetworkReach:
    """Where a station joins the network and how far every node is from the station."""

    node: int
    snap_m: float
    node_distances_m: np.ndarray  # travel metres from the station, snap leg included; inf beyond


class NetworkCatchments:
    """Catchments along a street network, cached per location; a drop-in for
    `CircleCatchments` (same `cells(lat, lon)`). Like it, not safe to share between threads."""

    def __init__(
        self,
        grid: Grid,
        network: StreetNetwork,
        *,
        speed_kmh: float,
        minutes: float,
        max_snap_m: float,
        sample_step_m: float = 25.0,
    ) -> None:
        if not speed_kmh > 0 or not minutes > 0:
            raise ValueError("speed_kmh and minutes must be positive")
        if not max_snap_m >= 0:
            raise ValueError("max_snap_m must not be negative")
        if not sample_step_m > 0:
            raise ValueError("sample_step_m must be positive")
        self.grid = grid
        self.network = network
        self.max_snap_m = max_snap_m
        self.sample_step_m = sample_step_m
        self.budget_m = speed_kmh * 1000.0 * minutes / 60.0
        self._off_network = CircleCatchments(grid, self.budget_m)
        self._cache: dict[tuple[float, float], frozenset[str]] = {}

        # Interior samples of every edge, laid out edge by edge; their cells are found lazily.
        length = network.edge_length_m
        pieces = np.maximum(1, np.ceil(length / sample_step_m)).astype(np.int64)
        self._interior = pieces - 1
        self._first_sample = np.concatenate(([0], np.cumsum(self._interior)))[:-1]
        total = int(self._interior.sum())
        self._sample_edge = np.repeat(np.arange(network.edge_count), self._interior)
        k = np.arange(total) - np.repeat(self._first_sample, self._interior) + 1
        frac = k / pieces[self._sample_edge]
        self._sample_t = frac * length[self._sample_edge]
        ends = network.nodes_lonlat[network.edge_nodes]  # (edges, 2 ends, lon/lat)
        start, delta = ends[:, 0, :], ends[:, 1, :] - ends[:, 0, :]
        delta[:, 0] = np.where(delta[:, 0] > 180, delta[:, 0] - 360, delta[:, 0])
        delta[:, 0] = np.where(delta[:, 0] < -180, delta[:, 0] + 360, delta[:, 0])
        points = start[self._sample_edge] + frac[:, None] * delta[self._sample_edge]
        points[:, 0] = np.where(points[:, 0] > 180, points[:, 0] - 360, points[:, 0])
        points[:, 0] = np.where(points[:, 0] < -180, points[:, 0] + 360, points[:, 0])
        self._sample_lonlat = points
        self._sample_cell = np.full(total, -1, dtype=np.int64)
        self._node_cell = np.full(network.node_count, -1, dtype=np.int64)
        self._cell_names: list[str] = []
        self._cell_ids: dict[str, int] = {}

    def cells(self, lat: float, lon: float) -> frozenset[str]:
        key = (lat, lon)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = frozenset(self._compute(lat, lon))
        return found

    def many(self, points: Sequence[tuple[float, float]]) -> list[frozenset[str]]:
        return [self.cells(lat, lon) for lat, lon in points]

    def reach(self, lat: float, lon: float) -> NetworkReach | None:
        """How the station at (lat, lon) joins the network; None when it is off the network."""
        nearest = self.network.nearest_node(lat, lon)
        if nearest is None or nearest[1] > self.max_snap_m:
            return None
        node, snap_m = nearest
        if snap_m > self.budget_m:
            distances = np.full(self.network.node_count, math.inf)
        else:
            distances = snap_m + self.network.node_distances(node, self.budget_m - snap_m)
            distances[distances > self.budget_m] = math.inf
        return NetworkReach(node=node, snap_m=snap_m, node_distances_m=distances)

    def _compute(self, lat: float, lon: float) -> set[str]:
        found = {self.grid.cell_of(lat, lon)}
        reach = self.reach(lat, lon)
        if reach is None:
            return found | self._off_network.cells(lat, lon)
        d = reach.node_distances_m
        reached = np.isfinite(d)
        if not reached.any():
            return found
        nodes = np.flatnonzero(reached)
        found |= self._named(self._node_cell, self.network.nodes_lonlat, nodes)

        u, v = self.network.edge_nodes[:, 0], self.network.edge_nodes[:, 1]
        touched = np.flatnonzero(reached[u] | reached[v])
        counts = self._interior[touched]
        total = int(counts.sum())
        if total:
            offsets = np.cumsum(counts) - counts
            samples = np.repeat(self._first_sample[touched] - offsets, counts) + np.arange(total)
            edge = self._sample_edge[samples]
            t = self._sample_t[samples]
            along = np.minimum(d[u[edge]] + t, d[v[edge]] + (self.network.edge_length_m[edge] - t))
            found |= self._named(
                self._sample_cell, self._sample_lonlat, samples[along <= self.budget_m]
            )
        return found

    def _named(self, memo: np.ndarray, lonlat: np.ndarray, which: np.ndarray) -> set[str]:
        """Cells of the points `which`, finding (and remembering) those not seen before."""
        for i in np.unique(which[memo[which] < 0]):
            name = self.grid.cell_of(float(lonlat[i, 1]), float(lonlat[i, 0]))
            cell_id = self._cell_ids.get(name)
            if cell_id is None:
                cell_id = self._cell_ids[name] = len(self._cell_names)
                self._cell_names.append(name)
            memo[i] = cell_id
        return {self._cell_names[c] for c in np.unique(memo[which])}
