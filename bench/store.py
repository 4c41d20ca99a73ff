"""Store benchmarks on both backends (SQLite file, and PostGIS in a private cluster under
var/postgis/bench with the server's durable defaults): bulk import of a city's stations and of
a million events, and the latency of a gap report narrowed to a subdistrict outline, which
the store answers with its spatial filtering (PostGIS: ST_Intersects on GiST indexes; SQLite: a
lon/lat box, then shapely).

Scales: the city of bench.coverage (`generate_sample_city(seed=7, stations=20000,
area_km2=15000)`, about 200,000 demand cells) and 1,000,000 events; `--quick`: 2,000 stations
on 1,500 km2 and 20,000 events (the names stay; the numbers are not comparable).
"""

from __future__ import annotations

import hashlib
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.results import Result
from demo.sample_city import SampleCity, generate_sample_city
from geo.catchment import CircleCatchments
from geo.grid import Grid
from geo.zones import BoundaryZones, H3Zones
from schemas.api import CellStatus
from schemas.geography import BoundaryLevel, CoverageCell
from store.repositories import ArchivedEvent
from store.unit_of_work import Store
from tools.postgis_cluster import Cluster
from waystation.settings import Settings

DEFAULTS = Settings.model_construct()
SEED = 7
CITY_STATIONS = 20_000
CITY_AREA_KM2 = 15_000.0
QUICK_CITY_STATIONS = 2000
QUICK_CITY_AREA_KM2 = 1500.0
EVENTS = 1_000_000
QUICK_EVENTS = 20_000
EVENT_BATCH = 5000  # events per append (one transaction), as a bulk loader would send them
DOWN_SHARE = 0.15  # stations closed or silent in the coverage snapshot
GAP_RUNS = 15
GAP_WARMUP = 2
T0 = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
SUBDISTRICT = BoundaryLevel.subdistrict  # the gap report looks at one subdistrict

IMPORT_STATIONS_TARGET_S = 10.0
IMPORT_EVENTS_TARGET_S = 300.0
GAP_REPORT_TARGET_MS = 500.0


def coverage_snapshot(city: SampleCity) -> list[CoverageCell]:
    """The city's coverage with a seeded 15% of stations down, as the runtime would save it."""
    grid = Grid(DEFAULTS.grid_resolution, DEFAULTS.zone_resolution)
    rng = random.Random(SEED)
    up = [s for s in city.stations if rng.random() >= DOWN_SHARE]
    counts: Counter[str] = Counter()
    for catchment in CircleCatchments(grid, DEFAULTS.catchment_radius_m).many(
        [(s.lat, s.lon) for s in up]
    ):
        counts.update(catchment)
    zones = BoundaryZones.from_boundaries(city.subdistricts, H3Zones(DEFAULTS.zone_resolution))
    cells = []
    for demand in city.demand:
        count = counts[demand.cell]
        if count:
            status = CellStatus.covered
        elif demand.demand_workers >= DEFAULTS.min_cell_demand_workers:
            status = CellStatus.underserved
        else:
            status = CellStatus.uncovered
        cells.append(
            CoverageCell(
                cell=demand.cell,
                district=demand.district,
                subdistrict=demand.subdistrict,
                zone=zones.zone_of(demand.cell),
                demand_workers=demand.demand_workers,
                coverage_count=count,
                access_score=0.1 * count,
                status=status,
                updated_at=T0,
            )
        )
    return cells


def event_batches(station_ids: Sequence[str], total: int) -> Iterator[list[ArchivedEvent]]:
    """Visits spread over a day across the stations, in canonical form, a batch at a time."""
    rng = random.Random(SEED)
    made = 0
    while made < total:
        batch = []
        for _ in range(min(EVENT_BATCH, total - made)):
            event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            station_id = station_ids[rng.randrange(len(station_ids))]
            at = T0 + timedelta(seconds=rng.randrange(86_400))
            body = (
                f'{{"event_id":"{event_id}","occurred_at":"{at.isoformat()}",'
                '"payload":{"dwell_minutes":null,"party_size":1,"services_used":[],'
                '"source":"qr_scan","worker_kind":"courier","worker_ref":null},'
                f'"schema_version":1,"station_id":"{station_id}","type":"visit"}}'
            )
            batch.append(
                ArchivedEvent(
                    seq=None,
                    event_id=event_id,
                    type="visit",
                    station_id=station_id,
                    occurred_at=at,
                    received_at=at,
                    body=body,
                    content_hash=hashlib.sha256(body.encode()).hexdigest(),
                    status="applied",
                )
            )
        made += len(batch)
        yield batch


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measure(
    backend: str, url: str, city: SampleCity, cells: list[CoverageCell], events: int
) -> dict[str, float | str]:
    store = Store.open(url)
    try:

        def import_stations() -> None:
            with store.transaction() as tx:
                tx.stations.upsert_many(city.stations)

        stations_s = timed(import_stations)

        ids = [s.station_id for s in city.stations]
        events_s = 0.0
        for batch in event_batches(ids, events):
            with store.transaction() as tx:
                started = time.perf_counter()
                tx.events.append(batch)
            events_s += time.perf_counter() - started  # the commit included

        with store.transaction() as tx:
            tx.coverage.replace(cells)
            tx.boundaries.replace([city.boundary, *city.subdistricts])
        subdistrict = min(b.name for b in city.subdistricts)

        def gap_report() -> int:
            with store.transaction(readonly=True) as tx:
                return len(tx.coverage.gaps_within_boundary(subdistrict, level=SUBDISTRICT))

        zones = 0
        times = []
        for i in range(GAP_WARMUP + GAP_RUNS):
            started = time.perf_counter()
            zones = gap_report()
            if i >= GAP_WARMUP:
                times.append((time.perf_counter() - started) * 1000)
        with store.transaction(readonly=True) as tx:
            in_area = len(tx.coverage.within_boundary(subdistrict, level=SUBDISTRICT))
            stored_events = tx.events.count()
        assert stored_events == events, f"{backend}: {stored_events} events stored"
    finally:
        store.close()
    return {
        "stations_s": stations_s,
        "events_s": events_s,
        "gap_ms": statistics.median(times),
        "gap_max_ms": max(times),
        "subdistrict": subdistrict,
        "cells_in_area": in_area,
        "zones": zones,
    }


def run(quick: bool) -> list[Result]:
    stations = QUICK_CITY_STATIONS if quick else CITY_STATIONS
    area_km2 = QUICK_CITY_AREA_KM2 if quick else CITY_AREA_KM2
    events = QUICK_EVENTS if quick else EVENTS
    city = generate_sample_city(seed=SEED, stations=stations, area_km2=area_km2)
    cells = coverage_snapshot(city)
    made_by = (
        f"`generate_sample_city(seed={SEED}, stations={stations}, area_km2={area_km2:g})` "
        f"({len(city.demand):,} demand cells, {len(city.subdistricts)} subdistricts)"
    )
    measured: dict[str, dict[str, float | str]] = {}
    with tempfile.TemporaryDirectory(prefix="waystation-bench-") as scratch:
        sqlite_url = f"sqlite:///{Path(scratch) / 'bench.db'}"
        measured["sqlite"] = measure("sqlite", sqlite_url, city, cells, events)
    # Its own cluster name for quick runs: a smoke test must not stop a full run's cluster.
    with Cluster("bench-quick" if quick else "bench", durable=True) as cluster:
        measured["postgis"] = measure(
            "postgis", cluster.create_database("bench"), city, cells, events
        )

    results = []
    backends = {
        "sqlite": "SQLite (WAL, synchronous=FULL)",
        "postgis": "PostgreSQL 15 + PostGIS 3 (default durability: fsync, synchronous_commit)",
    }
    for backend, label in backends.items():
        m = measured[backend]
        results.append(
            Result(
                f"store.import_stations_20k.{backend}.s",
                float(m["stations_s"]),
                "s",
                target=IMPORT_STATIONS_TARGET_S,
                about=(
                    f"Bulk import of every station of the city into an empty store on {label}: "
                    "`StationRepository.upsert_many` in one transaction (point geometry "
                    f"included), commit included. The city: {made_by}."
                ),
            )
        )
        results.append(
            Result(
                f"store.import_events_1m.{backend}.s",
                float(m["events_s"]),
                "s",
                target=IMPORT_EVENTS_TARGET_S,
                about=(
                    f"Bulk import of {events:,} visit events into the archive on {label}: "
                    f"`EventArchive.append` in batches of {EVENT_BATCH:,}, one transaction "
                    "each (duplicate lookup, insert, commit), timed without building the "
                    "events."
                ),
            )
        )
        results.append(
            Result(
                f"store.gap_report.city.{backend}.ms",
                float(m["gap_ms"]),
                "ms",
                target=GAP_REPORT_TARGET_MS,
                about=(
                    f"Latency of a gap report narrowed to one subdistrict outline on {label}: "
                    "`CoverageCellRepository.gaps_within_boundary` (cells whose hexagon "
                    "intersects the outline, summed by zone) in a read-only transaction, over "
                    f"the whole city's coverage snapshot ({len(cells):,} cells, "
                    f"{DOWN_SHARE:.0%} of stations down); median of {GAP_RUNS} runs after "
                    f"{GAP_WARMUP} warm-ups."
                ),
                detail=(
                    f"This run: subdistrict {m['subdistrict']!s}, {m['cells_in_area']:,} cells "
                    f"in it, {m['zones']} zones with gaps; max {float(m['gap_max_ms']):.1f} ms."
                ),
            )
        )
    return results
