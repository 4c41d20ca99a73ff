"""Coverage benchmarks: the cost of one station changing state (a "flip"), of computing a
city's coverage from scratch, its peak memory, and the same coverage done the plain way with
shapely.

Scales (all from `generate_sample_city`, seed 7, resolution 9, 1,000 m reach):
- district: 2,300 stations on the default 450 km2 (about 6,000 demand cells);
- city: 20,000 stations on 15,000 km2 (about 200,000 demand cells);
- `--quick`: the district, and a 2,000-station city on 1,500 km2 (about 20,000 cells).
"""

from __future__ import annotations

import gc
import random
import statistics
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass

import h3
import numpy as np
import shapely
from pyproj import Geod, Transformer

from bench.results import Result, flip_percentiles
from demo.sample_city import CENTRE_LAT_DEG, CENTRE_LON_DEG, SampleCity, generate_sample_city
from geo.catchment import CircleCatchments
from geo.coverage import CoverageIndex
from geo.grid import Grid
from schemas.stations import Station, StationState
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

# Targets
FLIP_TARGET_MS = 1.0
RECOMPUTE_TARGET_S = 5.0
PEAK_MEMORY_TARGET_MB = 1024.0

# The shapely baseline: discs of 4 x 32 segments, whose edges stray at most
# r (1 - cos(pi / 128)), 0.3 m at 1 km, inside the true circle; both methods must agree except
# on cells whose centre is within EDGE_TOLERANCE_M of a circle's edge.
BUFFER_QUAD_SEGS = 32
EDGE_TOLERANCE_M = 1.0
SHAPELY_BASELINE = "shapely union of geodesic buffers"

MIB = 2**20
OFF_STATES = (StationState.closed, StationState.silent)
_GEOD = Geod(ellps="WGS84")


@dataclass
class Build:
    catchments: CircleCatchments
    index: CoverageIndex
    catchments_s: float
    index_s: float


def build(stations: Sequence[Station]) -> Build:
    """From scratch: every station's catchment (empty cache), then the index, all available."""
    started = time.perf_counter()
    catchments = CircleCatchments(GRID, RADIUS_M)
    cells = catchments.many([(station.lat, station.lon) for station in stations])
    computed = time.perf_counter()
    index = CoverageIndex(degraded_weight=DEGRADED_WEIGHT)
    for catchment in cells:
        index.move(catchment, None, StationState.available)
    return Build(catchments, index, computed - started, time.perf_counter() - computed)


def flip_times_ms(
    stations: Sequence[Station], built: Build, flips: int, rng: random.Random
) -> np.ndarray:
    """Random flips of random stations, available to closed or silent and back, each timed as
    the live path does it: catchment from the cache, then `index.move`."""
    states = [StationState.available] * len(stations)
    points = [(station.lat, station.lon) for station in stations]
    catchments, index = built.catchments, built.index
    times = np.empty(flips)
    gc.collect()
    for i in range(-WARMUP_FLIPS, flips):
        j = rng.randrange(len(stations))
        old = states[j]
        new = rng.choice(OFF_STATES) if old is StationState.available else StationState.available
        lat, lon = points[j]
        started = time.perf_counter_ns()
        index.move(catchments.cells(lat, lon), old, new)
        elapsed = time.perf_counter_ns() - started
        states[j] = new
        if i >= 0:
            times[i] = elapsed / 1e6
    return times


def flip_results(
    scale: str, made_by: str, stations: Sequence[Station], built: Build, flips: int
) -> list[Result]:
    times = flip_times_ms(stations, built, flips, random.Random(SEED))
    sizes = [len(built.catchments.cells(s.lat, s.lon)) for s in stations]
    cells = len(built.index)
    about = (
        f"Time of one station flip at {scale} scale: a random station (seeded) goes from "
        "available to closed or silent, or back, applied as the live path does it "
        "(catchment from the `CircleCatchments` cache, then `CoverageIndex.move`); "
        f"{flips:,} timed flips after {WARMUP_FLIPS} untimed ones. The {scale}: {made_by}."
    )
    detail = (
        f"This run: {len(stations):,} stations, {cells:,} cells in the index (those some "
        f"station reaches), catchments of "
        f"{statistics.mean(sizes):.1f} cells on average (max {max(sizes)}); "
        f"mean {times.mean():.4f} ms, max {times.max():.3f} ms."
    )
    return flip_percentiles(
        f"coverage.flip.{scale}", times, target=FLIP_TARGET_MS, about=about, detail=detail
    )


def covered_flags(index: CoverageIndex, cells: Sequence[str]) -> np.ndarray:
    return np.fromiter((index.is_covered(cell) for cell in cells), bool, count=len(cells))


def shapely_covered(stations: Sequence[Station], cells: Sequence[str]) -> np.ndarray:
    """The plain way: buffer each station by the reach in a local azimuthal equidistant
    projection (distances from the city centre are true; across a 15,000 km2 city the
    projection's scale is within 2e-5 of true), union the discs, test each cell's centre."""
    to_m = Transformer.from_crs(
        "EPSG:4326",
        f"+proj=aeqd +lat_0={CENTRE_LAT_DEG} +lon_0={CENTRE_LON_DEG} +datum=WGS84 +units=m",
        always_xy=True,
    )
    x, y = to_m.transform([s.lon for s in stations], [s.lat for s in stations])
    discs = shapely.buffer(shapely.points(x, y), RADIUS_M, quad_segs=BUFFER_QUAD_SEGS)
    union = shapely.union_all(discs)
    shapely.prepare(union)
    centres = np.array([h3.cell_to_latlng(cell) for cell in cells])
    cell_x, cell_y = to_m.transform(centres[:, 1], centres[:, 0])
    return shapely.contains_xy(union, cell_x, cell_y)


def nearest_station_m(stations: Sequence[Station], cell: str) -> float:
    lat, lon = h3.cell_to_latlng(cell)
    lats = np.array([s.lat for s in stations])
    lons = np.array([s.lon for s in stations])
    _, _, dist = _GEOD.inv(np.full_like(lons, lon), np.full_like(lats, lat), lons, lats)
    return float(np.min(dist))


def city_results(city: SampleCity, made_by: str, *, quick: bool) -> list[Result]:
    stations = city.stations
    cells = [cell.cell for cell in city.demand]
    repeats = QUICK_REPEATS if quick else REPEATS
    sizes = f"{len(stations):,} stations, {len(cells):,} demand cells"

    # From scratch, `repeats` times (one build alive at a time); the last one is kept.
    build_s: list[float] = []
    ours_s: list[float] = []
    built: Build | None = None
    for _ in range(repeats):
        built = None
        gc.collect()
        built = build(stations)
        started = time.perf_counter()
        ours = covered_flags(built.index, cells)
        build_s.append(built.catchments_s + built.index_s)
        ours_s.append(build_s[-1] + time.perf_counter() - started)
    assert built is not None
    results = [
        Result(
            "coverage.recompute.city.s",
            statistics.median(build_s),
            "s",
            target=RECOMPUTE_TARGET_S,
            about=(
                "Coverage of the whole city from scratch: every station's catchment with an "
                "empty cache (`CircleCatchments.many`), then the `CoverageIndex` with every "
                f"station available; median of {_runs(repeats)}."
            ),
            detail=(
                f"This run: {sizes}; last run {built.catchments_s:.2f} s for the catchments "
                f"({built.catchments_s / len(stations) * 1e3:.3f} ms per station) and "
                f"{built.index_s:.2f} s for the index."
            ),
        )
    ]
    flips = QUICK_FLIPS if quick else FLIPS
    results = flip_results("city", made_by, stations, built, flips) + results
    del built
    gc.collect()

    # Peak memory of a build, measured apart: tracing slows allocation down.
    tracemalloc.start()
    traced = build(stations)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced
    gc.collect()
    results.append(
        Result(
            "coverage.peak_memory.city.mb",
            peak / MIB,
            "mb",
            target=PEAK_MEMORY_TARGET_MB,
            about=(
                "Peak memory of building the city's coverage from scratch (the catchments, "
                "which the live path keeps cached, and the index): the `tracemalloc` peak, "
                "i.e. memory allocated through Python's allocators (numpy arrays included) "
                "during the build, not the process's resident size; MB = 2^20 bytes."
            ),
            detail=f"This run: {sizes}; still held after the build: {held / MIB:.0f} MB.",
        )
    )

    # The plain way, on the same city.
    baseline_s: list[float] = []
    theirs = np.zeros(0, bool)
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        theirs = shapely_covered(stations, cells)
        baseline_s.append(time.perf_counter() - started)
    differ = np.flatnonzero(ours != theirs)
    margins = [abs(nearest_station_m(stations, cells[i]) - RADIUS_M) for i in differ]
    beyond = [m for m in margins if m > EDGE_TOLERANCE_M]
    if beyond:
        raise RuntimeError(
            f"coverage disagrees with the shapely baseline on {len(beyond)} cells farther than "
            f"{EDGE_TOLERANCE_M} m from any circle's edge (up to {max(beyond):.2f} m)"
        )
    agreement = 1.0 - differ.size / len(cells)
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
                "union (`contains_xy`, prepared). Value: ours, the from-scratch build above "
                "plus reading each demand cell's covered flag, in seconds; ratio: baseline "
                f"seconds over ours; medians of {_runs(repeats)} each. Both must give the same "
                f"covered cells, except cells whose centre is within {EDGE_TOLERANCE_M:g} m "
                "of a circle's edge (the buffers are polygons)."
            ),
            detail=(
                f"This run: baseline {baseline_median:.2f} s, ours {ours_median:.2f} s on "
                f"{sizes} (no subset); {int(ours.sum()):,} cells covered; the methods agree "
                f"on {agreement:.4%} of the demand cells ({differ.size} differ"
                + (f", all within {max(margins):.2f} m of an edge)." if margins else ").")
            ),
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
    results = flip_results("district", made_by, district.stations, build(district.stations), flips)
    del district
    stations = QUICK_CITY_STATIONS if quick else CITY_STATIONS
    area_km2 = QUICK_CITY_AREA_KM2 if quick else CITY_AREA_KM2
    city = generate_sample_city(seed=SEED, stations=stations, area_km2=area_km2)
    made_by = (
        f"`generate_sample_city(seed={SEED}, stations={stations}, area_km2={area_km2:g})`, the "
        f"sample district's generator on a larger outline, hotspots scaled with the area "
        f"({len(city.demand):,} demand cells)"
    )
    return results + city_results(city, made_by, quick=quick)
