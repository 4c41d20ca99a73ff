"""Coverage benchmarks: the cost of one station changing state (a "flip"), of computing a
network's coverage from scratch, its peak memory, and the same coverage done the plain way
with shapely.

Scales:
- district: 2,300 stations on the default 450 km2 (about 6,000 demand cells);
- city: 20,000 stations on 15,000 km2 (about 200,000 demand cells); both from
  `generate_sample_city`, seed 7, resolution 9, 1,000 m reach;
- national: 190,000 stations in 300 synthetic cities spread over eastern China, each a
  hexagonal disk of demand cells (about 2 million cells in all), stations clustered towards
  each city's centre (seed 7);
- `--quick`: the district, a 2,000-station city on 1,500 km2 (about 20,000 cells) and a
  national network a tenth of the size.

"From scratch" is the vectorised build: `CircleCatchments.reach` over the demand cells'
centres (fixed data of the demand layer, computed once when it loads), then
`CoverageIndex.build`; no Python loop over cells or stations.
"""

from __future__ import annotations

import gc
import random
import resource
import statistics
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import h3.api.basic_int as h3_int
import h3.api.numpy_int as h3_np
import numpy as np
import shapely
from pyproj import Geod, Transformer

from bench.results import Result, flip_percentiles
from demo.sample_city import CENTRE_LAT_DEG, CENTRE_LON_DEG, SampleCity, generate_sample_city
from geo.catchment import CircleCatchments
from geo.coverage import CoverageIndex
from geo.grid import Grid
from schemas.stations import StationState
from waystation.settings import Settings

# The shipped defaults (not the environment): 1,000 m reach, resolution 9, degraded 0.5.
DEFAULTS = Settings.model_construct()
RADIUS_M = DEFAULTS.catchment_radius_m
GRID = Grid(DEFAULTS.grid_resolution, DEFAULTS.zone_resolution)
DEGRADED_WEIGHT = DEFAULTS.degraded_coverage_weight

SEED = 7
DISTRICT_STATIONS = 2300
CITY_STATIONS = 20_000
CITY_AREA_KM2 = 15_000.0
QUICK_CITY_STATIONS = 2000
QUICK_CITY_AREA_KM2 = 1500.0

FLIPS = 10_000
QUICK_FLIPS = 1000
WARMUP_FLIPS = 500
REPEATS = 3  # from-scratch builds and shapely runs; the median is reported
QUICK_REPEATS = 1

# The national network: synthetic cities over eastern China.
NATIONAL_STATIONS = 190_000
NATIONAL_CITIES = 300
NATIONAL_CITY_RINGS = 47  # 6,769 resolution-9 cells, about 700 km2, per city
NATIONAL_SPREAD_M = 6000.0
NATIONAL_LAT_RANGE = (22.0, 45.0)
NATIONAL_LON_RANGE = (100.0, 125.0)
NATIONAL_QUICK_SCALE = 10
NATIONAL_REPEATS = 1
METRES_PER_DEGREE_LAT = 111_320.0  # for spreading synthetic stations only

# Targets
FLIP_TARGET_MS = 1.0
RECOMPUTE_TARGET_S = 5.0
PEAK_MEMORY_TARGET_MB = 1024.0
NATIONAL_RECOMPUTE_TARGET_S = 30.0
NATIONAL_MEMORY_TARGET_MB = 4096.0
VS_SHAPELY_TARGET_RATIO = 10.0

# The shapely baseline: discs of 4 x 32 segments, whose edges stray at most
# r (1 - cos(pi / 128)), 0.3 m at 1 km, inside the true circle; both methods must agree except
# on cells whose centre is within EDGE_TOLERANCE_M of a circle's edge.
BUFFER_QUAD_SEGS = 32
EDGE_TOLERANCE_M = 1.0
SHAPELY_BASELINE = "shapely union of geodesic buffers"

MIB = 2**20
OFF_STATES = (StationState.closed, StationState.silent)
_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class Network:
    """Stations and demand cells as arrays: the inputs of a from-scratch build."""

    points: list[tuple[float, float]]
    cells: np.ndarray  # int64 H3 indexes of the demand cells, sorted
    lats: np.ndarray  # their centres
    lons: np.ndarray

    @classmethod
    def of(cls, points: Sequence[tuple[float, float]], cells: np.ndarray) -> Network:
        cells = np.unique(cells.astype(np.int64))
        centres = np.fromiter(
            chain.from_iterable(map(h3_int.cell_to_latlng, cells.tolist())),
            float,
            count=2 * cells.size,
        )
        return cls(list(points), cells, centres[0::2].copy(), centres[1::2].copy())


@dataclass
class Build:
    index: CoverageIndex
    catchments_s: float
    index_s: float
    sizes: np.ndarray  # demand cells in each station's catchment


def build(network: Network) -> Build:
    """From scratch: every station's catchment among the demand cells, then the index, every
    station available."""
    started = time.perf_counter()
    members = CircleCatchments(GRID, RADIUS_M).reach(network.points, network.lats, network.lons)
    computed = time.perf_counter()
    index = CoverageIndex.build(
        DEGRADED_WEIGHT,
        owners=members.owners,
        cells=network.cells[members.cells],
        states=[StationState.available] * len(network.points),
    )
    built = time.perf_counter()
    sizes = np.bincount(members.owners, minlength=len(network.points))
    return Build(index, computed - started, built - computed, sizes)


def flip_times_ms(network: Network, built: Build, flips: int, rng: random.Random) -> np.ndarray:
    """Random flips of random stations, available to closed or silent and back, each timed as
    the live path does it: the station's catchment (its demand cells) from a cache, then
    `index.move`. A catchment is computed, untimed, the first time its station flips. What
    was built before is frozen out of the garbage collector's scans (`gc.freeze`), so that
    the timings are of the flips, not of full collections over a national-size heap."""
    states = [StationState.available] * len(network.points)
    catchments = CircleCatchments(GRID, RADIUS_M)
    cached: dict[int, list[str]] = {}
    index = built.index
    times = np.empty(flips)
    gc.collect()
    gc.freeze()
    try:
        for i in range(-WARMUP_FLIPS, flips):
            j = rng.randrange(len(network.points))
            old = states[j]
            new = (
                rng.choice(OFF_STATES) if old is StationState.available else StationState.available
            )
            cells = cached.get(j)
            if cells is None:
                cells = cached[j] = demand_cells(network, catchments.cells(*network.points[j]))
            started = time.perf_counter_ns()
            index.move(cells, old, new)
            elapsed = time.perf_counter_ns() - started
            states[j] = new
            if i >= 0:
                times[i] = elapsed / 1e6
    finally:
        gc.unfreeze()
    return times


def demand_cells(network: Network, cells: frozenset[str]) -> list[str]:
    """The demand cells among `cells`."""
    keys = np.array([int(cell, 16) for cell in cells], np.int64)
    rows = np.minimum(np.searchsorted(network.cells, keys), network.cells.size - 1)
    return [format(key, "x") for key in keys[network.cells[rows] == keys].tolist()]


def flip_results(
    scale: str, made_by: str, network: Network, built: Build, flips: int
) -> list[Result]:
    times = flip_times_ms(network, built, flips, random.Random(SEED))
    sizes = built.sizes
    about = (
        f"Time of one station flip at {scale} scale: a random station (seeded) goes from "
        "available to closed or silent, or back, applied as the live path does it "
        "(the station's catchment from a cache, then `CoverageIndex.move`) on the index "
        f"built from scratch; {flips:,} timed flips after {WARMUP_FLIPS} untimed ones. "
        f"The {scale}: {made_by}."
    )
    detail = (
        f"This run: {len(network.points):,} stations, {len(built.index):,} demand cells "
        f"reached, catchments of {sizes.mean():.1f} demand cells on average (max "
        f"{sizes.max()}); mean {times.mean():.4f} ms, max {times.max():.3f} ms."
    )
    return flip_percentiles(
        f"coverage.flip.{scale}", times, target=FLIP_TARGET_MS, about=about, detail=detail
    )


def shapely_covered(network: Network) -> np.ndarray:
    """The plain way: buffer each station by the reach in a local azimuthal equidistant
    projection (distances from the city centre are true; across a 15,000 km2 city the
    projection's scale is within 2e-5 of true), union the discs, test each cell's centre
    (the same precomputed centres the vectorised build gets)."""
    to_m = Transformer.from_crs(
        "EPSG:4326",
        f"+proj=aeqd +lat_0={CENTRE_LAT_DEG} +lon_0={CENTRE_LON_DEG} +datum=WGS84 +units=m",
        always_xy=True,
    )
    x, y = to_m.transform([p[1] for p in network.points], [p[0] for p in network.points])
    discs = shapely.buffer(shapely.points(x, y), RADIUS_M, quad_segs=BUFFER_QUAD_SEGS)
    union = shapely.union_all(discs)
    shapely.prepare(union)
    cell_x, cell_y = to_m.transform(network.lons, network.lats)
    return shapely.contains_xy(union, cell_x, cell_y)


def nearest_station_m(network: Network, i: int) -> float:
    lats = np.array([p[0] for p in network.points])
    lons = np.array([p[1] for p in network.points])
    lat, lon = network.lats[i], network.lons[i]
    _, _, dist = _GEOD.inv(np.full_like(lons, lon), np.full_like(lats, lat), lons, lats)
    return float(np.min(dist))


def city_network(city: SampleCity) -> Network:
    cells = np.array([int(cell.cell, 16) for cell in city.demand], np.int64)
    return Network.of([(s.lat, s.lon) for s in city.stations], cells)


def timed_builds(
    network: Network, repeats: int
) -> tuple[list[float], list[float], Build, np.ndarray]:
    """`repeats` builds from scratch (one alive at a time): their times, the times with every
    demand cell's covered flag read, the last build and its flags."""
    build_s: list[float] = []
    ours_s: list[float] = []
    built: Build | None = None
    ours = np.zeros(0, bool)
    for _ in range(repeats):
        built = None
        gc.collect()
        built = build(network)
        started = time.perf_counter()
        ours = built.index.covered_many(network.cells)
        build_s.append(built.catchments_s + built.index_s)
        ours_s.append(build_s[-1] + time.perf_counter() - started)
    assert built is not None
    return build_s, ours_s, built, ours


def peak_build_mb(network: Network) -> tuple[float, float]:
    """The tracemalloc peak of a build and what it still holds after, in MB."""
    gc.collect()
    tracemalloc.start()
    traced = build(network)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced
    gc.collect()
    return peak / MIB, held / MIB


MEMORY_ABOUT = (
    "the `tracemalloc` peak, i.e. memory allocated through Python's allocators (numpy arrays "
    "included) during the build, not the process's resident size; MB = 2^20 bytes."
)


def city_results(city: SampleCity, made_by: str, *, quick: bool) -> list[Result]:
    network = city_network(city)
    repeats = QUICK_REPEATS if quick else REPEATS
    sizes = f"{len(network.points):,} stations, {network.cells.size:,} demand cells"
    build_s, ours_s, built, ours = timed_builds(network, repeats)
    results = [
        Result(
            "coverage.recompute.city.s",
            statistics.median(build_s),
            "s",
            target=RECOMPUTE_TARGET_S,
            about=(
                "Coverage of the whole city from scratch: every station's catchment among "
                "the demand cells (`CircleCatchments.reach`: the cells' centres sorted into "
                "latitude bands, runs of them surely in or maybe in each catchment found by "
                "binary search, then the catchment rule for the maybes, vectorised), then "
                "`CoverageIndex.build` with every "
                f"station available; median of {_runs(repeats)}."
            ),
            detail=(
                f"This run: {sizes}; last run {built.catchments_s:.3f} s for the catchments "
                f"and {built.index_s:.3f} s for the index."
            ),
        )
    ]
    flips = QUICK_FLIPS if quick else FLIPS
    results = flip_results("city", made_by, network, built, flips) + results
    del built
    peak_mb, held_mb = peak_build_mb(network)
    results.append(
        Result(
            "coverage.peak_memory.city.mb",
            peak_mb,
            "mb",
            target=PEAK_MEMORY_TARGET_MB,
            about="Peak memory of building the city's coverage from scratch: " + MEMORY_ABOUT,
            detail=f"This run: {sizes}; still held after the build: {held_mb:.0f} MB.",
        )
    )

    # The plain way, on the same city.
    baseline_s: list[float] = []
    theirs = np.zeros(0, bool)
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        theirs = shapely_covered(network)
        baseline_s.append(time.perf_counter() - started)
    differ = np.flatnonzero(ours != theirs)
    margins = [abs(nearest_station_m(network, int(i)) - RADIUS_M) for i in differ]
    beyond = [m for m in margins if m > EDGE_TOLERANCE_M]
    if beyond:
        raise RuntimeError(
            f"coverage disagrees with the shapely baseline on {len(beyond)} cells farther than "
            f"{EDGE_TOLERANCE_M} m from any circle's edge (up to {max(beyond):.2f} m)"
        )
    agreement = 1.0 - differ.size / network.cells.size
    ours_median = statistics.median(ours_s)
    baseline_median = statistics.median(baseline_s)
    results.append(
        Result(
            "coverage.recompute.city.vs_shapely",
            ours_median,
            "s",
            baseline=SHAPELY_BASELINE,
            ratio=baseline_median / ours_median,
            about=(
                "The same coverage computed the plain way on the same (whole) city, as the "
                "baseline: project the stations to a local azimuthal equidistant CRS, buffer "
                f"each by {RADIUS_M:,.0f} m ({BUFFER_QUAD_SEGS} segments per quarter circle), "
                "`shapely.union_all` the discs and test each demand cell's centre against the "
                "union (`contains_xy`, prepared). Both start from the same inputs: the "
                "stations and the demand cells' centres (fixed data of the demand layer). "
                "Value: ours, the from-scratch build above plus reading each demand cell's "
                "covered flag (`covered_many`), in seconds; ratio: baseline seconds over ours "
                f"(target: {VS_SHAPELY_TARGET_RATIO:g}x); medians of {_runs(repeats)} each. "
                "Both must give the same covered cells, except cells whose centre is within "
                f"{EDGE_TOLERANCE_M:g} m of a circle's edge (the buffers are polygons)."
            ),
            detail=(
                f"This run: baseline {baseline_median:.2f} s, ours {ours_median:.3f} s on "
                f"{sizes} (no subset); {int(ours.sum()):,} cells covered; the methods agree "
                f"on {agreement:.4%} of the demand cells ({differ.size} differ"
                + (f", all within {max(margins):.2f} m of an edge)." if margins else ").")
            ),
        )
    )
    return results


def national_network(cities: int, stations: int, seed: int) -> Network:
    """`cities` hexagonal disks of demand cells (NATIONAL_CITY_RINGS rings of resolution-9
    cells, about 700 km2 each) at random places over eastern China, and `stations` stations
    spread over them, normally around each city's centre."""
    rng = np.random.default_rng(seed)
    centre_lats = rng.uniform(*NATIONAL_LAT_RANGE, size=cities)
    centre_lons = rng.uniform(*NATIONAL_LON_RANGE, size=cities)
    disks = [
        h3_np.grid_disk(h3_int.latlng_to_cell(lat, lon, GRID.resolution), NATIONAL_CITY_RINGS)
        for lat, lon in zip(centre_lats.tolist(), centre_lons.tolist(), strict=True)
    ]
    city_of = rng.integers(0, cities, size=stations)
    north_m = rng.normal(0.0, NATIONAL_SPREAD_M, size=stations)
    east_m = rng.normal(0.0, NATIONAL_SPREAD_M, size=stations)
    lats = centre_lats[city_of] + north_m / METRES_PER_DEGREE_LAT
    lons = centre_lons[city_of] + east_m / (
        METRES_PER_DEGREE_LAT * np.cos(np.radians(centre_lats[city_of]))
    )
    points = list(zip(lats.tolist(), lons.tolist(), strict=True))
    return Network.of(points, np.concatenate(disks).astype(np.int64))


def national_results(*, quick: bool) -> list[Result]:
    scale = NATIONAL_QUICK_SCALE if quick else 1
    cities, stations = NATIONAL_CITIES // scale, NATIONAL_STATIONS // scale
    network = national_network(cities, stations, SEED)
    repeats = QUICK_REPEATS if quick else NATIONAL_REPEATS
    sizes = f"{len(network.points):,} stations, {network.cells.size:,} demand cells"
    made_by = (
        f"{cities} synthetic cities (hexagonal disks of {NATIONAL_CITY_RINGS} rings of "
        f"resolution-9 demand cells) at random over latitudes {NATIONAL_LAT_RANGE} and "
        f"longitudes {NATIONAL_LON_RANGE}, {stations:,} stations spread normally "
        f"({NATIONAL_SPREAD_M / 1e3:g} km) around the cities' centres (seed {SEED})"
        + (f"; `--quick`: a 1/{scale} scale model" if quick else "")
    )
    build_s, _, built, covered = timed_builds(network, repeats)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results = [
        Result(
            "coverage.recompute.national.s",
            statistics.median(build_s),
            "s",
            target=NATIONAL_RECOMPUTE_TARGET_S,
            about=(
                "The national network's coverage from scratch, built as the city's above "
                f"(`CircleCatchments.reach`, then `CoverageIndex.build`); median of "
                f"{_runs(repeats)}. The network: {made_by}."
            ),
            detail=(
                f"This run: {sizes}; last run {built.catchments_s:.2f} s for the catchments "
                f"and {built.index_s:.2f} s for the index; {int(covered.sum()):,} cells "
                f"covered; the process's peak resident size so far {rss_mb:,.0f} MB."
            ),
        )
    ]
    flips = QUICK_FLIPS if quick else FLIPS
    results += flip_results("national", made_by, network, built, flips)
    del built
    peak_mb, held_mb = peak_build_mb(network)
    results.append(
        Result(
            "coverage.peak_memory.national.mb",
            peak_mb,
            "mb",
            target=NATIONAL_MEMORY_TARGET_MB,
            about="Peak memory of building the national coverage from scratch: " + MEMORY_ABOUT,
            detail=f"This run: {sizes}; still held after the build (the index): {held_mb:.0f} MB.",
        )
    )
    return results


def _runs(count: int) -> str:
    return "1 run" if count == 1 else f"{count} runs"


def run(quick: bool) -> list[Result]:
    flips = QUICK_FLIPS if quick else FLIPS
    district = generate_sample_city(seed=SEED, stations=DISTRICT_STATIONS)
    made_by = (
        f"`generate_sample_city(seed={SEED}, stations={DISTRICT_STATIONS})`, the default "
        f"450 km2 sample district ({len(district.demand):,} demand cells)"
    )
    network = city_network(district)
    results = flip_results("district", made_by, network, build(network), flips)
    del district, network
    stations = QUICK_CITY_STATIONS if quick else CITY_STATIONS
    area_km2 = QUICK_CITY_AREA_KM2 if quick else CITY_AREA_KM2
    city = generate_sample_city(seed=SEED, stations=stations, area_km2=area_km2)
    made_by = (
        f"`generate_sample_city(seed={SEED}, stations={stations}, area_km2={area_km2:g})`, the "
        f"sample district's generator on a larger outline, hotspots scaled with the area "
        f"({len(city.demand):,} demand cells)"
    )
    results += city_results(city, made_by, quick=quick)
    del city
    gc.collect()
    return results + national_results(quick=quick)
