"""Pipeline benchmarks: the whole processing of one station flip (ledger, fan-out to zones,
zone book, zone assessment and alert observation), not just the coverage index, and one clock
tick over a city where nothing changes.

The pipeline runs over plain dicts, as the embedded runtime drives it, with the shipped
defaults (not the environment) and H3 parents as zones. Scales are those of
`bench.coverage`: the 2,300-station district, the 20,000-station city on 15,000 km2, and
for `--quick` the district and a 2,000-station city on 1,500 km2.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from bench.coverage import (
    CITY_AREA_KM2,
    CITY_STATIONS,
    DISTRICT_STATIONS,
    FLIP_TARGET_MS,
    QUICK_CITY_AREA_KM2,
    QUICK_CITY_STATIONS,
    SEED,
)
from bench.results import Result, flip_percentiles
from demo.sample_city import WITHIN_OPENING_HOURS, SampleCity, generate_sample_city
from geo.catchment import CircleCatchments
from geo.demand import DemandLayer
from geo.grid import Grid
from schemas.alerts import AlertEvent
from schemas.events import (
    AmenityState,
    CheckInEvent,
    CheckInPayload,
    CheckInStatus,
    EventType,
    HealthCheckEvent,
    HealthCheckPayload,
)
from schemas.stations import Station
from streams.pipeline import Pipeline
from waystation.settings import Settings

# The shipped defaults (not the environment), zones as H3 parents at the zone resolution.
SETTINGS = Settings.model_construct(zone_scheme="h3")
GRID = Grid(SETTINGS.grid_resolution, SETTINGS.zone_resolution)

T0 = WITHIN_OPENING_HOURS
FLIP_STEP = timedelta(seconds=1)  # the clock moves this much between flips

FLIPS = 5000
QUICK_FLIPS = 500
WARMUP_FLIPS = 200
QUICK_WARMUP_FLIPS = 50
TICKS = 5
QUICK_TICKS = 3


@dataclass
class Prepared:
    pipeline: Pipeline
    stations: list[Station]
    zones_with_demand: int
    restore_s: float
    open_s: float
    opened_alert_events: int


def event_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def check_in(
    rng: random.Random, station: Station, status: CheckInStatus, at: datetime
) -> CheckInEvent:
    return CheckInEvent(
        event_id=event_id(rng),
        type=EventType.check_in,
        station_id=station.station_id,
        occurred_at=at,
        payload=CheckInPayload(status=status, seats_available=station.capacity, staffed=True),
    )


def health_check(rng: random.Random, station: Station, at: datetime) -> HealthCheckEvent:
    return HealthCheckEvent(
        event_id=event_id(rng),
        type=EventType.health_check,
        station_id=station.station_id,
        occurred_at=at,
        payload=HealthCheckPayload(
            amenities=dict.fromkeys(station.amenities, AmenityState.ok),
            next_check_in_seconds=SETTINGS.heartbeat_interval_seconds,
        ),
    )


def prepare(city: SampleCity, rng: random.Random) -> Prepared:
    """A pipeline over dicts, restored at T0, then every station opened through `handle` (a
    check-in and a health check each, at T0)."""
    stations = list(city.stations)
    demand = DemandLayer.build(GRID, city.demand)
    pipeline = Pipeline(
        settings=SETTINGS,
        demand=demand,
        registry={station.station_id: station for station in stations},
        catchments=CircleCatchments(GRID, SETTINGS.catchment_radius_m),
        records={},
        zones={},
        alerts={},
        visits={},
    )
    gc.collect()
    started = time.perf_counter()
    pipeline.restore(T0)
    restored = time.perf_counter()
    alert_events = 0
    for station in stations:
        for event in (
            check_in(rng, station, CheckInStatus.open, T0),
            health_check(rng, station, T0),
        ):
            alert_events += len(pipeline.handle(event, T0).alert_events)
    opened = time.perf_counter()
    return Prepared(
        pipeline=pipeline,
        stations=stations,
        zones_with_demand=len(demand.cells_of_zone),
        restore_s=restored - started,
        open_s=opened - restored,
        opened_alert_events=alert_events,
    )


@dataclass
class Flips:
    times_ms: np.ndarray
    cpu_ms: np.ndarray  # the same flips in thread CPU time, to tell work from waiting
    station_changes: int
    flipped_cells: int
    alert_events: list[AlertEvent]
    end: datetime


def flip_times(prepared: Prepared, flips: int, warmup: int, rng: random.Random) -> Flips:
    """Random stations (seeded) check in closed when open and open when closed, the clock
    moving FLIP_STEP each time; each flip timed as `pipeline.handle(event, now)` alone."""
    pipeline, stations = prepared.pipeline, prepared.stations
    is_open = [True] * len(stations)
    times = np.empty(flips)
    cpu = np.empty(flips)
    changes = cells = 0
    alert_events: list[AlertEvent] = []
    now = T0
    gc.collect()
    for i in range(-warmup, flips):
        now += FLIP_STEP
        j = rng.randrange(len(stations))
        status = CheckInStatus.closed if is_open[j] else CheckInStatus.open
        event = check_in(rng, stations[j], status, now)
        started = time.perf_counter_ns()
        started_cpu = time.thread_time_ns()
        outcome = pipeline.handle(event, now)
        elapsed_cpu = time.thread_time_ns() - started_cpu
        elapsed = time.perf_counter_ns() - started
        is_open[j] = not is_open[j]
        if i >= 0:
            times[i] = elapsed / 1e6
            cpu[i] = elapsed_cpu / 1e6
            changes += len(outcome.station_changes)
            cells += len(outcome.flipped_cells)
            alert_events += outcome.alert_events
    return Flips(times, cpu, changes, cells, alert_events, now)


def flip_results(scale: str, made_by: str, prepared: Prepared, *, quick: bool) -> list[Result]:
    flips = QUICK_FLIPS if quick else FLIPS
    warmup = QUICK_WARMUP_FLIPS if quick else WARMUP_FLIPS
    seen = flip_times(prepared, flips, warmup, random.Random(SEED))
    times = seen.times_ms
    transitions: dict[str, int] = {}
    for event in seen.alert_events:
        label = f"{event.alert.kind.value} {event.transition.value}"
        transitions[label] = transitions.get(label, 0) + 1
    seen_alerts = ", ".join(f"{count:,} {label}" for label, count in sorted(transitions.items()))
    pipeline = prepared.pipeline
    about = (
        f"Time of one station flip through the whole processing chain at {scale} scale: "
        "`Pipeline.handle` of a check-in (closed for an open station, open for a closed "
        "one) for a random station (seeded), i.e. the ledger, the fan-out of the station's "
        "catchment into per-zone deltas, the zone book (each zone's coverage index), the "
        "assessment of every zone touched and the alert observations (station and zone). "
        "The pipeline runs over dicts with the shipped defaults and H3 zones at resolution "
        f"{GRID.zone_resolution}; it is restored at T0, every station is opened with a "
        "check-in and a health check through `handle`, then "
        f"{flips:,} flips are timed after {warmup} untimed ones, the clock moving "
        f"{FLIP_STEP.total_seconds():g} s per flip (so zone alerts pass their grace period "
        f"and open within the run). Only `handle` is timed, not building the event. "
        f"The {scale}: {made_by}."
    )
    detail = (
        f"This run: {len(prepared.stations):,} stations, {prepared.zones_with_demand:,} zones "
        f"with demand, {len(pipeline.zone_book.zones):,} zones some station reaches; restore "
        f"took {prepared.restore_s:.2f} s and opening every station "
        f"{prepared.open_s:.2f} s ({prepared.open_s / (2 * len(prepared.stations)) * 1e3:.3f} "
        f"ms per event); the timed flips changed {seen.station_changes:,} station states, "
        f"flipped {seen.flipped_cells:,} cells and gave {len(seen.alert_events):,} alert "
        f"events ({seen_alerts or 'none'}); {len(pipeline.alert_book.alerts):,} alerts pending "
        f"or open at the end; mean {times.mean():.4f} ms, max {times.max():.3f} ms. In thread "
        f"CPU time the same flips took {np.median(seen.cpu_ms):.4f} ms (median) and "
        f"{np.percentile(seen.cpu_ms, 99):.4f} ms (p99): wall time above CPU time is time the "
        "process was not running (other load on the machine) or waiting."
    )
    return flip_percentiles(
        f"pipeline.flip.{scale}", times, target=FLIP_TARGET_MS, about=about, detail=detail
    )


def tick_result(made_by: str, prepared: Prepared, *, quick: bool) -> Result:
    """Ticks right after every station was opened, at the same instant: the ledger re-judges
    every record against the clock and the alert book advances every alert, and nothing
    changes."""
    pipeline = prepared.pipeline
    repeats = QUICK_TICKS if quick else TICKS
    now = T0 + FLIP_STEP
    times: list[float] = []
    changes = events = 0
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        outcome = pipeline.tick(now)
        times.append((time.perf_counter() - started) * 1e3)
        changes += len(outcome.station_changes)
        events += len(outcome.alert_events)
    if changes or events:
        raise RuntimeError(f"a tick with nothing due changed {changes} stations, {events} alerts")
    return Result(
        "pipeline.tick.city.ms",
        statistics.median(times),
        "ms",
        about=(
            "One clock tick (`Pipeline.tick`) over the whole city with nothing due: every "
            "station open and heard from at T0, the tick 1 s later, so the ledger re-judges "
            "every record against the clock, visit windows and the alert book are walked, and "
            f"no state changes (checked); median of {repeats} ticks. The city: {made_by}."
        ),
        detail=(
            f"This run: {len(pipeline.ledger.records):,} station records, "
            f"{len(pipeline.alert_book.alerts):,} alerts pending; ticks took "
            + ", ".join(f"{t:.1f}" for t in times)
            + " ms."
        ),
    )


def run(quick: bool) -> list[Result]:
    district = generate_sample_city(seed=SEED, stations=DISTRICT_STATIONS)
    made_by = (
        f"`generate_sample_city(seed={SEED}, stations={DISTRICT_STATIONS})`, the default "
        f"450 km2 sample district ({len(district.demand):,} demand cells)"
    )
    results = flip_results("district", made_by, prepare(district, random.Random(SEED)), quick=quick)
    del district
    gc.collect()
    stations = QUICK_CITY_STATIONS if quick else CITY_STATIONS
    area_km2 = QUICK_CITY_AREA_KM2 if quick else CITY_AREA_KM2
    city = generate_sample_city(seed=SEED, stations=stations, area_km2=area_km2)
    made_by = (
        f"`generate_sample_city(seed={SEED}, stations={stations}, area_km2={area_km2:g})` "
        f"({len(city.demand):,} demand cells)"
    )
    prepared = prepare(city, random.Random(SEED))
    del city
    tick = tick_result(made_by, prepared, quick=quick)
    return results + flip_results("city", made_by, prepared, quick=quick) + [tick]
