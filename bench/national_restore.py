"""The national network restored and served on one machine: about 190,000 stations over some
two million demand cells (China's worker stations at the end of 2024), brought back as a
restarted runtime brings them back, then read as the API reads them.

The peak resident size it reports is its process's: `bench.run` runs each module in an
interpreter of its own, so it is this restore's and not the rest of the benchmark run's. The
network is `bench.coverage`'s
national one (the same synthetic cities and stations); the restore is `Pipeline.restore`
over plain dicts, with every station's record saying it checked in open and healthy.
"""

from __future__ import annotations

import gc
import resource
import statistics
import time
from dataclasses import dataclass

import h3.api.basic_int as h3_int
import numpy as np

from bench.coverage import (
    GRID,
    NATIONAL_CITIES,
    NATIONAL_QUICK_SCALE,
    NATIONAL_STATIONS,
    SEED,
    national_network,
)
from bench.results import Result
from demo.sample_city import WITHIN_OPENING_HOURS
from geo.catchment import CircleCatchments
from geo.demand import DemandLayer
from schemas.events import AmenityState, CheckInStatus
from schemas.geography import DemandCell
from schemas.state import StationRecord
from schemas.stations import Amenity, Station, StationKind, StationState
from streams.coverage_map import CoverageMap
from streams.ledger import OPEN_AND_REPORTING
from streams.pipeline import Pipeline
from waystation.settings import Settings

# The shipped defaults (not the environment), zones as H3 parents at the zone resolution.
SETTINGS = Settings.model_construct(zone_scheme="h3")
T0 = WITHIN_OPENING_HOURS

DISTRICT_RESOLUTION = 5  # synthetic districts: H3 parents of about 250 km2
MEAN_CELL_DEMAND_WORKERS = 3.0
STATION_SEATS = 12
AMENITIES = (Amenity.drinking_water, Amenity.restroom, Amenity.phone_charging, Amenity.rest_seats)
GAP_READS = 5

# Targets: a restart within a few minutes, in a third of this machine's memory.
RESTORE_TARGET_S = 120.0
PEAK_RSS_TARGET_MB = 8192.0
GAPS_TARGET_MS = 2000.0


@dataclass(frozen=True)
class Figures:
    stations: int
    cells: int
    zones: int
    inputs_s: float
    demand_s: float
    restore_s: float
    gaps_ms: float
    gap_zones: int
    available: int
    peak_rss_mb: float


def national_inputs(
    cities: int, stations: int
) -> tuple[list[DemandCell], list[Station], dict[str, StationRecord]]:
    """The demand cells, the stations and their records, as a restart reads them from the
    store (already validated there: built here without validating again)."""
    network = national_network(cities, stations, SEED)
    rng = np.random.default_rng(SEED)
    workers = rng.exponential(MEAN_CELL_DEMAND_WORKERS, size=network.cells.size)
    demand = [
        DemandCell.model_construct(
            cell=format(cell, "x"),
            demand_workers=float(w),
            district=f"N-{h3_int.cell_to_parent(cell, DISTRICT_RESOLUTION):x}",
            subdistrict=None,
        )
        for cell, w in zip(network.cells.tolist(), workers.tolist(), strict=True)
    ]
    registry: list[Station] = []
    for i, (lat, lon) in enumerate(network.points):
        district = h3_int.cell_to_parent(
            h3_int.latlng_to_cell(lat, lon, GRID.resolution), DISTRICT_RESOLUTION
        )
        registry.append(
            Station.model_construct(
                station_id=f"NS-{i:06d}",
                name=f"National station {i}",
                kind=StationKind.outdoor_worker_station,
                district=f"N-{district:x}",
                lat=lat,
                lon=lon,
                capacity=STATION_SEATS,
                amenities=AMENITIES,
            )
        )
    healthy = StationRecord(
        station_id="template",
        check_in_status=CheckInStatus.open,
        check_in_at=T0,
        seats_available=STATION_SEATS,
        staffed=True,
        amenities=dict.fromkeys(AMENITIES, AmenityState.ok),
        health_at=T0,
        heartbeat_interval_s=SETTINGS.heartbeat_interval_seconds,
        state=StationState.available,
        state_since=T0,
        state_reason=OPEN_AND_REPORTING.text(),
        state_cause=OPEN_AND_REPORTING,
    )
    records = {
        s.station_id: healthy.model_copy(update={"station_id": s.station_id}) for s in registry
    }
    return demand, registry, records


def measure(cities: int, stations: int) -> Figures:
    """In this process: build the inputs, then time the demand layer, the restore and the
    national gap ranking; the peak resident size at the end."""
    started = time.perf_counter()
    demand, registry, records = national_inputs(cities, stations)
    gc.collect()
    built = time.perf_counter()
    layer = DemandLayer.build(GRID, demand)
    layered = time.perf_counter()
    pipeline = Pipeline(
        settings=SETTINGS,
        demand=layer,
        registry={station.station_id: station for station in registry},
        catchments=CircleCatchments(GRID, SETTINGS.catchment_radius_m),
        records=records,
        zones={},
        alerts={},
        visits={},
    )
    pipeline.restore(T0)
    restored = time.perf_counter()
    coverage_map = CoverageMap(pipeline.zone_book.zones, layer, pipeline.zone_book)
    gap_ms: list[float] = []
    gaps = []
    for _ in range(GAP_READS):
        began = time.perf_counter()
        gaps = coverage_map.gaps(None, set())
        gap_ms.append((time.perf_counter() - began) * 1e3)
    available = sum(r.state is StationState.available for r in pipeline.ledger.records.values())
    return Figures(
        stations=len(registry),
        cells=len(demand),
        zones=len(layer.cells_of_zone),
        inputs_s=built - started,
        demand_s=layered - built,
        restore_s=restored - layered,
        gaps_ms=statistics.median(gap_ms),
        gap_zones=len(gaps),
        available=available,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
    )


def run(quick: bool) -> list[Result]:
    scale = NATIONAL_QUICK_SCALE if quick else 1
    cities, stations = NATIONAL_CITIES // scale, NATIONAL_STATIONS // scale
    figures = measure(cities, stations)
    if figures.available != figures.stations:
        raise RuntimeError(f"{figures.available} of {figures.stations} stations came back open")
    network = (
        f"`bench.coverage`'s national network: {cities} synthetic cities, "
        f"{figures.stations:,} stations, {figures.cells:,} demand cells, {figures.zones:,} zones "
        "(H3 parents), districts as resolution-5 H3 parents; every station's record says it "
        "checked in open and healthy"
    )
    detail = (
        f"This run: inputs built in {figures.inputs_s:.1f} s, demand layer "
        f"{figures.demand_s:.1f} s, restore {figures.restore_s:.1f} s, "
        f"{figures.available:,} stations available; gap ranking {figures.gap_zones:,} zones."
    )
    return [
        Result(
            "pipeline.restore.national.s",
            figures.demand_s + figures.restore_s,
            "s",
            target=RESTORE_TARGET_S,
            about=(
                f"A restart of the national network: {network}. "
                "Value: the demand layer built from its cells (`DemandLayer.build`) plus "
                "`Pipeline.restore` (every station's catchment, its state into the ledger, "
                "each zone's coverage index built whole, every zone judged), in seconds; "
                "reading the store is not included."
            ),
            detail=detail,
        ),
        Result(
            "pipeline.restore.national.peak_rss_mb",
            figures.peak_rss_mb,
            "mb",
            target=PEAK_RSS_TARGET_MB,
            about=(
                "The peak resident size of that process (`ru_maxrss`): the inputs as a "
                "restart holds them (demand cells, stations, records) and everything the "
                "restore built, in MB = 2^20 bytes."
            ),
            detail=detail,
        ),
        Result(
            "pipeline.gaps.national.ms",
            figures.gaps_ms,
            "ms",
            target=GAPS_TARGET_MS,
            about=(
                "Serving it: the nation's gap ranking (`CoverageMap.gaps` over every zone, "
                "what GET /v1/gaps answers without a district) on the restored state; median "
                f"of {GAP_READS} reads."
            ),
            detail=detail,
        ),
    ]
