"""A synthetic sample district, generated from a seed.

Demos, tests and benchmarks need a district that looks like a real one (about Chaoyang's size
and station count, uneven demand, a few neglected hotspots) without shipping anyone's data.
Everything here is made up: the outline, subdistricts, names, demand and stations. The same
seed always gives the same city, so results can be compared across runs and machines.

Geometry is built in a local azimuthal equidistant projection around the district centre (so
that distances and Voronoi cells are isotropic in metres), then converted to WGS84 and rounded
to `COORD_DECIMALS`. Every containment decision is made on the rounded WGS84 geometry, the same
geometry callers get, so that "inside" means the same thing here and downstream.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import h3
import numpy as np
import shapely
from pyproj import Transformer
from shapely import affinity
from shapely.geometry import MultiPoint, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from schemas.geography import Boundary, BoundaryLevel, DemandCell
from schemas.stations import Amenity, Station, StationKind

DISTRICT_NAME = "Sample District"
STATION_ID_PREFIX = "SD"
STATION_ID_DIGITS = 4

# Outline: an irregular blob about the size and shape of Chaoyang, Beijing.
CENTRE_LON_DEG = 116.49
CENTRE_LAT_DEG = 39.95
DISTRICT_AREA_M2 = 450.0e6  # the default; benchmarks ask for larger areas
DISTRICT_NORTH_SOUTH_STRETCH = 1.3  # taller than wide
OUTLINE_VERTICES = 96
OUTLINE_HARMONICS = (2, 3, 4, 5, 7)
OUTLINE_HARMONIC_MAX_AMPLITUDE = 0.09  # relative to the mean radius, divided by sqrt(order)
OUTLINE_VERTEX_NOISE = 0.015  # relative jitter of each vertex's radius
COORD_DECIMALS = 6  # ~0.1 m; what map apps export

# Subdistricts: Voronoi cells of seeded points, relaxed so that sizes vary but none is tiny.
SUBDISTRICT_LLOYD_ITERATIONS = 1

# Demand: a small base everywhere plus Gaussian hotspots (the counts are per district-sized
# area: a larger area gets proportionally more of them, and of the neglected ones below).
BASE_DEMAND_WORKERS_PER_CELL = 0.4
BASE_DEMAND_NOISE_WORKERS_PER_CELL = 0.4
MIN_HOTSPOTS = 20
MAX_HOTSPOTS = 30
DEMAND_DECIMALS = 1


@dataclass(frozen=True)
class HotspotKind:
    """A kind of place where outdoor workers gather: how busy its core is and how far it spreads."""

    name: str
    share: float
    peak_workers_per_cell: tuple[float, float]
    sigma_m: tuple[float, float]


HOTSPOT_KINDS = (
    HotspotKind("commercial_centre", 0.45, (18.0, 45.0), (350.0, 800.0)),
    HotspotKind("logistics_hub", 0.35, (10.0, 30.0), (600.0, 1300.0)),
    HotspotKind("residential_cluster", 0.20, (4.0, 12.0), (900.0, 1800.0)),
)

# Gaps: a few hotspots where the network has (almost) nothing, so the sample has underserved
# zones, like a new logistics park the stations have not caught up with. They are placed away
# from the other hotspots (best of `NEGLECTED_CANDIDATES` random spots, at least
# `NEGLECTED_EDGE_CLEARANCE_M` inside the edge). Station sampling weight is cut by the neglect
# depth within `NEGLECT_CORE_SIGMAS` x sigma + `NEGLECT_MARGIN_M` of their centre: the margin is
# one walking catchment, so that stations on the rim do not cover the core.
MIN_NEGLECTED_HOTSPOTS = 4
MAX_NEGLECTED_HOTSPOTS = 6
NEGLECTED_HOTSPOT_KINDS = ("logistics_hub",)
NEGLECTED_CANDIDATES = 40
NEGLECTED_EDGE_CLEARANCE_M = 1500.0
NEGLECT_DEPTH_RANGE = (0.97, 1.0)  # 1.0: no stations at all; 0.97: a few
NEGLECT_CORE_SIGMAS = 1.5
NEGLECT_MARGIN_M = 1000.0

# Stations: sampled in proportion to demand, jittered around their cell's centre.
STATION_JITTER_M = 150.0
STATION_PLACEMENT_MAX_ROUNDS = 50

KIND_SHARES: dict[StationKind, float] = {
    StationKind.partner_store: 0.46,
    StationKind.outdoor_worker_station: 0.34,
    StationKind.warm_station: 0.08,
    StationKind.union_station: 0.07,
    StationKind.worker_home: 0.05,
}

CAPACITY_SEATS: dict[StationKind, tuple[int, int]] = {
    StationKind.partner_store: (4, 12),
    StationKind.outdoor_worker_station: (6, 30),
    StationKind.warm_station: (8, 40),
    StationKind.union_station: (10, 40),
    StationKind.worker_home: (10, 40),
}

AMENITY_PROBABILITY: dict[Amenity, float] = {
    Amenity.drinking_water: 0.98,
    Amenity.microwave: 0.55,
    Amenity.phone_charging: 0.97,
    Amenity.ebike_charging: 0.25,
    Amenity.restroom: 0.5,
    Amenity.rest_seats: 0.99,
    Amenity.air_conditioning: 0.7,
    Amenity.heating: 0.6,
    Amenity.first_aid: 0.45,
    Amenity.aed: 0.06,
    Amenity.wifi: 0.6,
    Amenity.lockers: 0.12,
}

AMENITY_PROBABILITY_BY_KIND: dict[StationKind, dict[Amenity, float]] = {
    StationKind.warm_station: {Amenity.heating: 0.98, Amenity.microwave: 0.8},
    StationKind.union_station: {Amenity.first_aid: 0.85, Amenity.aed: 0.35, Amenity.restroom: 0.9},
    StationKind.outdoor_worker_station: {Amenity.ebike_charging: 0.5, Amenity.restroom: 0.7},
    StationKind.worker_home: {Amenity.lockers: 0.5, Amenity.microwave: 0.9, Amenity.restroom: 0.95},
    StationKind.partner_store: {Amenity.restroom: 0.3, Amenity.first_aid: 0.3},
}

ALL_DAY = "Mo-Su 00:00-24:00"
# A Monday, 11:00 in Beijing: every sample station is within its opening hours, so a clock set
# here closes none of them (benchmarks and browser tests that close stations themselves).
WITHIN_OPENING_HOURS = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
OPENING_HOURS: dict[StationKind, tuple[tuple[str, float], ...]] = {
    StationKind.partner_store: (
        (ALL_DAY, 0.45),
        ("Mo-Su 07:00-23:00", 0.3),
        ("Mo-Su 08:00-22:00", 0.25),
    ),
    StationKind.outdoor_worker_station: (
        (ALL_DAY, 0.35),
        ("Mo-Su 08:00-20:00", 0.45),
        ("Mo-Su 07:00-21:00", 0.2),
    ),
    StationKind.warm_station: ((ALL_DAY, 0.5), ("Mo-Su 06:00-22:00", 0.5)),
    StationKind.union_station: (("Mo-Fr 09:00-17:30", 0.5), ("Mo-Su 08:00-20:00", 0.5)),
    StationKind.worker_home: ((ALL_DAY, 0.6), ("Mo-Su 08:00-22:00", 0.4)),
}

# Synthetic, pinyin-like name parts. Combinations are drawn at random; none is a real list.
NAME_HEADS = (
    "An", "Bai", "Bei", "Chang", "Chen", "Da", "Dong", "Fang", "Feng", "Fu", "Gao", "Guang",
    "Hai", "He", "Heng", "Hong", "Hua", "Jia", "Jin", "Jing", "Kang", "Lan", "Le", "Lian",
    "Lin", "Long", "Ming", "Nan", "Ning", "Ping", "Qing", "Rui", "Shang", "Shun", "Tai", "Tian",
    "Wan", "Wen", "Xi", "Xin", "Ya", "Yong", "Yu", "Zhong",
)  # fmt: skip
NAME_TAILS = (
    "an", "bei", "cheng", "dian", "feng", "he", "hu", "jing", "kou", "lin", "men", "ning",
    "ping", "qiao", "shan", "shui", "song", "tai", "tan", "xin", "yang", "ying", "yuan", "zhuang",
)  # fmt: skip
SUBDISTRICT_SUFFIXES = (("", 0.6), (" Lu", 0.15), (" Jie", 0.1), (" Li", 0.1), (" Cun", 0.05))
PARTNER_BRAND_TYPES = (
    ("Convenience", 0.4),
    ("Mart", 0.2),
    ("Bank", 0.15),
    ("Pharmacy", 0.1),
    ("Supermarket", 0.1),
    ("Petrol", 0.05),
)
PARTNER_BRANDS = 14
PARTNER_BRAND_ZIPF_EXPONENT = 1.1  # a few big chains host most partner stations
UNION_OPERATOR = f"{DISTRICT_NAME} Federation of Trade Unions"
LOGISTICS_OPERATOR_TYPES = ("Logistics", "Express", "Delivery Services")
LOGISTICS_OPERATORS = 5


@dataclass(frozen=True)
class SampleCity:
    """A generated district: outline, subdistricts, stations and demand."""

    district: str
    boundary: Boundary
    subdistricts: tuple[Boundary, ...]
    stations: tuple[Station, ...]
    demand: tuple[DemandCell, ...]


@dataclass(frozen=True)
class _Hotspot:
    x_m: float
    y_m: float
    peak_workers_per_cell: float
    sigma_m: float


class _LocalProjection:
    """WGS84 <-> metres around the district centre (azimuthal equidistant)."""

    def __init__(self, lon: float, lat: float) -> None:
        local = f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m"
        self._to_m = Transformer.from_crs("EPSG:4326", local, always_xy=True)
        self._to_deg = Transformer.from_crs(local, "EPSG:4326", always_xy=True)

    def to_m(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._to_m.transform(lon, lat)
        return np.asarray(x), np.asarray(y)

    def to_deg(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = self._to_deg.transform(x, y)
        return np.round(np.asarray(lon), COORD_DECIMALS), np.round(np.asarray(lat), COORD_DECIMALS)

    def geometry_to_deg(self, geom: BaseGeometry) -> BaseGeometry:
        def convert(coords: np.ndarray) -> np.ndarray:
            lon, lat = self.to_deg(coords[:, 0], coords[:, 1])
            return np.column_stack([lon, lat])

        return shapely.transform(geom, convert)


def generate_sample_city(
    *,
    seed: int = 7,
    stations: int = 2000,
    subdistricts: int = 40,
    grid_resolution: int = 9,
    area_km2: float = DISTRICT_AREA_M2 / 1e6,
) -> SampleCity:
    """Generate the sample district. Same arguments, same city.

    `area_km2` scales the outline, and the number of hotspots with it (same density), so that
    benchmarks can ask for a whole city (e.g. 15,000 km2, ~200,000 cells at resolution 9)."""
    if stations < 1 or subdistricts < 1:
        raise ValueError("a sample city needs at least one station and one subdistrict")
    if area_km2 <= 0:
        raise ValueError("a sample city needs a positive area")
    rnd = random.Random(seed)
    rng = np.random.default_rng(seed)
    proj = _LocalProjection(CENTRE_LON_DEG, CENTRE_LAT_DEG)

    outline_m = _district_outline_m(rng, area_km2 * 1e6)
    district_deg = _polygonal(proj.geometry_to_deg(outline_m))
    boundary = Boundary(
        name=DISTRICT_NAME, level=BoundaryLevel.district, geometry=_geojson(district_deg)
    )
    district_geom = shape(boundary.geometry)

    sub_names = _unique_names(rnd, subdistricts, SUBDISTRICT_SUFFIXES)
    sub_geoms_m = _subdistricts_m(rng, outline_m, subdistricts)
    sub_boundaries = tuple(
        Boundary(
            name=name,
            level=BoundaryLevel.subdistrict,
            parent=DISTRICT_NAME,
            geometry=_geojson(_polygonal(proj.geometry_to_deg(geom))),
        )
        for name, geom in zip(sub_names, sub_geoms_m, strict=True)
    )
    sub_geoms = [shape(b.geometry) for b in sub_boundaries]
    for geom in (district_geom, *sub_geoms):
        shapely.prepare(geom)

    cells, cell_lon, cell_lat = _district_cells(proj, outline_m, district_geom, grid_resolution)
    cell_x, cell_y = proj.to_m(cell_lon, cell_lat)
    cell_sub = _locate(sub_geoms, cell_lon, cell_lat, fallback_nearest=True)

    hotspots, neglected = _hotspots(rng, outline_m, area_km2 * 1e6 / DISTRICT_AREA_M2)
    demand_values = _demand(rng, hotspots, cell_x, cell_y)
    demand = tuple(
        DemandCell(
            cell=cell,
            demand_workers=float(value),
            district=DISTRICT_NAME,
            subdistrict=sub_names[sub],
        )
        for cell, value, sub in zip(cells, demand_values, cell_sub, strict=True)
    )

    weights = _station_weights(demand_values, hotspots, neglected, cell_x, cell_y)
    lon, lat, sub_idx = _place_stations(
        rng, proj, weights, cell_x, cell_y, district_geom, sub_geoms, stations
    )
    station_list = _stations(rnd, lon, lat, sub_idx, sub_names)
    return SampleCity(
        district=DISTRICT_NAME,
        boundary=boundary,
        subdistricts=sub_boundaries,
        stations=station_list,
        demand=demand,
    )


# --- geometry -----------------------------------------------------------------------------


def _district_outline_m(rng: np.random.Generator, area_m2: float) -> Polygon:
    """A star-shaped outline: a stretched circle with low-frequency wobble, scaled to area."""
    angles = np.linspace(0.0, 2.0 * np.pi, OUTLINE_VERTICES, endpoint=False)
    radius = np.ones_like(angles)
    for order in OUTLINE_HARMONICS:
        amplitude = rng.uniform(0.0, OUTLINE_HARMONIC_MAX_AMPLITUDE) / np.sqrt(order)
        radius += amplitude * np.cos(order * angles + rng.uniform(0.0, 2.0 * np.pi))
    radius *= 1.0 + rng.normal(0.0, OUTLINE_VERTEX_NOISE, size=angles.size)
    unit = Polygon(
        np.column_stack(
            [radius * np.cos(angles), DISTRICT_NORTH_SOUTH_STRETCH * radius * np.sin(angles)]
        )
    )
    scale = float(np.sqrt(area_m2 / unit.area))
    return affinity.scale(unit, xfact=scale, yfact=scale, origin=(0.0, 0.0))


def _random_points_in(rng: np.random.Generator, geom: BaseGeometry, count: int) -> np.ndarray:
    """Uniform points inside `geom` by rejection from its bounding box."""
    min_x, min_y, max_x, max_y = geom.bounds
    shapely.prepare(geom)
    found: list[np.ndarray] = []
    have = 0
    while have < count:
        xs = rng.uniform(min_x, max_x, size=2 * count)
        ys = rng.uniform(min_y, max_y, size=2 * count)
        inside = shapely.contains_xy(geom, xs, ys)
        batch = np.column_stack([xs[inside], ys[inside]])
        found.append(batch)
        have += len(batch)
    return np.concatenate(found)[:count]


def _subdistricts_m(rng: np.random.Generator, outline: Polygon, count: int) -> list[BaseGeometry]:
    """Voronoi cells of seeded points clipped to the district, after a little Lloyd relaxation."""
    seeds = _random_points_in(rng, outline, count)
    cells = _clipped_voronoi(seeds, outline)
    for _ in range(SUBDISTRICT_LLOYD_ITERATIONS):
        relaxed = []
        for cell in cells:
            centroid = cell.centroid
            point = centroid if outline.contains(centroid) else cell.representative_point()
            relaxed.append((point.x, point.y))
        cells = _clipped_voronoi(np.array(relaxed), outline)
    return cells


def _clipped_voronoi(points: np.ndarray, outline: Polygon) -> list[BaseGeometry]:
    if len(points) == 1:
        return [outline]
    regions = shapely.voronoi_polygons(MultiPoint(points), extend_to=outline, ordered=True)
    return [_polygonal(region.intersection(outline)) for region in shapely.get_parts(regions)]


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Drop stray points and lines that clipping can leave; keep a Polygon or MultiPolygon."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]
    merged = shapely.union_all(parts)
    if merged.geom_type == "Polygon":
        return orient(merged, sign=1.0)
    return shapely.MultiPolygon([orient(p, sign=1.0) for p in shapely.get_parts(merged)])


def _geojson(geom: BaseGeometry) -> dict[str, Any]:
    """GeoJSON with lists (not tuples), so that it compares equal after a JSON round trip."""
    return _listify(mapping(geom))


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _listify(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_listify(item) for item in value]
    return value


def _locate(
    geoms: Sequence[BaseGeometry],
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    fallback_nearest: bool = False,
) -> np.ndarray:
    """Index of the geometry containing each point; -1 if none (or the nearest, if asked)."""
    where = np.full(len(lon), -1, dtype=np.int64)
    for index, geom in enumerate(geoms):
        hit = (where < 0) & shapely.contains_xy(geom, lon, lat)
        where[hit] = index
    if fallback_nearest:
        for i in np.flatnonzero(where < 0):
            point = shapely.Point(lon[i], lat[i])
            where[i] = int(np.argmin([g.distance(point) for g in geoms]))
    return where


def _district_cells(
    proj: _LocalProjection, outline_m: Polygon, district: BaseGeometry, resolution: int
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every H3 cell whose centre lies in the district, sorted, with its centre."""
    margin_m = 2.0 * h3.average_hexagon_edge_length(resolution, unit="m")
    search_area = proj.geometry_to_deg(outline_m.buffer(margin_m))
    candidates = sorted(h3.geo_to_cells(search_area, resolution))
    if not candidates:
        raise ValueError(f"grid resolution {resolution} is too coarse for a district")
    centres = np.array([h3.cell_to_latlng(cell) for cell in candidates])
    lat, lon = centres[:, 0], centres[:, 1]
    inside = shapely.contains_xy(district, lon, lat)
    cells = [cell for cell, keep in zip(candidates, inside, strict=True) if keep]
    if not cells:
        raise ValueError(f"no H3 cell at resolution {resolution} has its centre in the district")
    return cells, lon[inside], lat[inside]


# --- demand -------------------------------------------------------------------------------


def _hotspots(
    rng: np.random.Generator, outline: Polygon, districts: float
) -> tuple[list[_Hotspot], dict[int, float]]:
    """Hotspots, and which of them the network neglects and how deeply (1.0: no stations);
    `districts` is the area in default district areas (the counts scale with it)."""

    def scaled(low: int, high: int) -> int:
        return int(
            rng.integers(max(1, round(low * districts)), max(1, round(high * districts)) + 1)
        )

    count = scaled(MIN_HOTSPOTS, MAX_HOTSPOTS)
    neglected_count = min(count, scaled(MIN_NEGLECTED_HOTSPOTS, MAX_NEGLECTED_HOTSPOTS))
    shares = np.array([kind.share for kind in HOTSPOT_KINDS])
    kinds = rng.choice(len(HOTSPOT_KINDS), size=count - neglected_count, p=shares / shares.sum())
    centres = _random_points_in(rng, outline, count - neglected_count)
    hotspots = [
        _hotspot(rng, HOTSPOT_KINDS[k], x, y) for (x, y), k in zip(centres, kinds, strict=True)
    ]
    inner = outline.buffer(-NEGLECTED_EDGE_CLEARANCE_M)
    area = outline if inner.is_empty else inner
    gap_kinds = [kind for kind in HOTSPOT_KINDS if kind.name in NEGLECTED_HOTSPOT_KINDS]
    neglected: dict[int, float] = {}
    for _ in range(neglected_count):
        candidates = _random_points_in(rng, area, NEGLECTED_CANDIDATES)
        if hotspots:
            taken = np.array([(h.x_m, h.y_m) for h in hotspots])
            gaps = np.hypot(
                candidates[:, None, 0] - taken[None, :, 0],
                candidates[:, None, 1] - taken[None, :, 1],
            ).min(axis=1)
            x, y = candidates[int(np.argmax(gaps))]
        else:
            x, y = candidates[0]
        kind = gap_kinds[int(rng.integers(len(gap_kinds)))]
        neglected[len(hotspots)] = float(rng.uniform(*NEGLECT_DEPTH_RANGE))
        hotspots.append(_hotspot(rng, kind, x, y))
    return hotspots, neglected


def _hotspot(rng: np.random.Generator, kind: HotspotKind, x: float, y: float) -> _Hotspot:
    return _Hotspot(
        x_m=float(x),
        y_m=float(y),
        peak_workers_per_cell=float(rng.uniform(*kind.peak_workers_per_cell)),
        sigma_m=float(rng.uniform(*kind.sigma_m)),
    )


def _gaussian(spot: _Hotspot, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.exp(-((x - spot.x_m) ** 2 + (y - spot.y_m) ** 2) / (2.0 * spot.sigma_m**2))


def _demand(
    rng: np.random.Generator, hotspots: list[_Hotspot], x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    base = BASE_DEMAND_WORKERS_PER_CELL + rng.uniform(
        0.0, BASE_DEMAND_NOISE_WORKERS_PER_CELL, size=x.size
    )
    hot = sum((spot.peak_workers_per_cell * _gaussian(spot, x, y) for spot in hotspots), 0.0)
    return np.round(base + hot, DEMAND_DECIMALS)


def _station_weights(
    demand: np.ndarray,
    hotspots: list[_Hotspot],
    neglected: dict[int, float],
    x: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    """Demand, cut down around the neglected hotspots (the deliberate gaps)."""
    weights = demand.astype(float)
    for index, depth in neglected.items():
        spot = hotspots[index]
        reach_m = NEGLECT_CORE_SIGMAS * spot.sigma_m + NEGLECT_MARGIN_M
        weights[np.hypot(x - spot.x_m, y - spot.y_m) < reach_m] *= 1.0 - depth
    return weights


# --- stations -----------------------------------------------------------------------------


def _place_stations(
    rng: np.random.Generator,
    proj: _LocalProjection,
    weights: np.ndarray,
    cell_x: np.ndarray,
    cell_y: np.ndarray,
    district: BaseGeometry,
    sub_geoms: Sequence[BaseGeometry],
    count: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stations where the (weighted) demand is, each inside the district and a subdistrict."""
    cells = rng.choice(weights.size, size=count, p=weights / weights.sum())
    lon = np.zeros(count)
    lat = np.zeros(count)
    sub = np.full(count, -1, dtype=np.int64)
    pending = np.arange(count)
    for _ in range(STATION_PLACEMENT_MAX_ROUNDS):
        jitter = rng.normal(0.0, STATION_JITTER_M, size=(pending.size, 2))
        cand_lon, cand_lat = proj.to_deg(
            cell_x[cells[pending]] + jitter[:, 0], cell_y[cells[pending]] + jitter[:, 1]
        )
        where = _locate(sub_geoms, cand_lon, cand_lat)
        ok = (where >= 0) & shapely.contains_xy(district, cand_lon, cand_lat)
        lon[pending[ok]] = cand_lon[ok]
        lat[pending[ok]] = cand_lat[ok]
        sub[pending[ok]] = where[ok]
        pending = pending[~ok]
        if pending.size == 0:
            break
    else:
        raise RuntimeError("could not place every station inside a subdistrict")
    # Number stations subdistrict by subdistrict, west to east, as a registry would.
    order = np.lexsort((lat, lon, sub))
    return lon[order], lat[order], sub[order]


def _weighted_choice(rnd: random.Random, options: Sequence[tuple[str, float]]) -> str:
    values = [value for value, _ in options]
    weights = [weight for _, weight in options]
    return rnd.choices(values, weights=weights)[0]


def _unique_names(
    rnd: random.Random, count: int, suffixes: Sequence[tuple[str, float]]
) -> list[str]:
    """Distinct pinyin-like names such as "Anhe" or "Jinsong Lu"."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        head, tail = rnd.choice(NAME_HEADS), rnd.choice(NAME_TAILS)
        if head.lower() == tail:
            continue
        name = head + tail + _weighted_choice(rnd, suffixes)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _kind_quota(count: int) -> list[StationKind]:
    """Kinds in their shares (largest remainder), every kind at least once when possible."""
    kinds = list(KIND_SHARES)
    exact = {kind: count * share for kind, share in KIND_SHARES.items()}
    quota = {kind: int(value) for kind, value in exact.items()}
    by_remainder = sorted(kinds, key=lambda k: exact[k] - quota[k], reverse=True)
    for kind in by_remainder[: count - sum(quota.values())]:
        quota[kind] += 1
    if count >= len(kinds):
        for kind in kinds:
            if quota[kind] == 0:
                donor = max(kinds, key=lambda k: quota[k])
                quota[donor] -= 1
                quota[kind] = 1
    return [kind for kind in kinds for _ in range(quota[kind])]


def _amenities(rnd: random.Random, kind: StationKind) -> tuple[Amenity, ...]:
    overrides = AMENITY_PROBABILITY_BY_KIND.get(kind, {})
    return tuple(
        amenity
        for amenity in Amenity
        if rnd.random() < overrides.get(amenity, AMENITY_PROBABILITY[amenity])
    )


def _stations(
    rnd: random.Random,
    lon: np.ndarray,
    lat: np.ndarray,
    sub_idx: np.ndarray,
    sub_names: Sequence[str],
) -> tuple[Station, ...]:
    brands = [
        f"{name} {_weighted_choice(rnd, PARTNER_BRAND_TYPES)}"
        for name in _unique_names(rnd, PARTNER_BRANDS, (("", 1.0),))
    ]
    brand_weights = [1.0 / (rank + 1) ** PARTNER_BRAND_ZIPF_EXPONENT for rank in range(len(brands))]
    logistics = [
        f"{name} {rnd.choice(LOGISTICS_OPERATOR_TYPES)}"
        for name in _unique_names(rnd, LOGISTICS_OPERATORS, (("", 1.0),))
    ]
    kinds = _kind_quota(len(lon))
    rnd.shuffle(kinds)
    numbering: Counter[tuple[str, str]] = Counter()
    result = []
    for index, (kind, x, y, sub) in enumerate(zip(kinds, lon, lat, sub_idx, strict=True)):
        subdistrict = sub_names[int(sub)]
        name, operator = _name_and_operator(
            rnd, kind, subdistrict, brands, brand_weights, logistics
        )
        numbering[(kind, name)] += 1
        result.append(
            Station(
                station_id=f"{STATION_ID_PREFIX}-{index + 1:0{STATION_ID_DIGITS}d}",
                name=f"{name} No. {numbering[(kind, name)]}",
                kind=kind,
                district=DISTRICT_NAME,
                subdistrict=subdistrict,
                lon=float(x),
                lat=float(y),
                capacity=rnd.randint(*CAPACITY_SEATS[kind]),
                amenities=_amenities(rnd, kind),
                opening_hours=_weighted_choice(rnd, OPENING_HOURS[kind]),
                operator=operator,
            )
        )
    return tuple(result)


def _name_and_operator(
    rnd: random.Random,
    kind: StationKind,
    subdistrict: str,
    brands: Sequence[str],
    brand_weights: Sequence[float],
    logistics: Sequence[str],
) -> tuple[str, str]:
    """A station's base name (numbered by the caller) and who runs it, by kind."""
    if kind is StationKind.partner_store:
        brand = rnd.choices(brands, weights=brand_weights)[0]
        return f"{brand} ({subdistrict})", f"{brand} Co., Ltd."
    if kind is StationKind.outdoor_worker_station:
        operator = rnd.choice([f"{subdistrict} Subdistrict Office", UNION_OPERATOR])
        return f"{subdistrict} Outdoor Worker Service Station", operator
    if kind is StationKind.warm_station:
        return f"{subdistrict} Warm Station", UNION_OPERATOR
    if kind is StationKind.union_station:
        return f"{subdistrict} Trade Union Station", f"{subdistrict} Subdistrict Trade Union"
    operator = rnd.choice([UNION_OPERATOR, *logistics])
    return f"{subdistrict} Workers' Home", operator
