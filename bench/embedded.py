"""Embedded runtime benchmarks: events per second end to end (archived durably in SQLite, then
processed and their state saved), the time from posting an event until the live map shows
it, and the archiving half alone.

An `EmbeddedSystem` on a temporary SQLite store with the sample district loaded, a manual
clock, no clock thread and no simulator. A stream of valid events, built beforehand, goes
through `runtime.submit` in batches (the call the HTTP ingest makes once it has validated a
request), then `drain` waits until the processor has applied and saved everything.
"""

from __future__ import annotations

import gc
import random
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from bench.coverage import DISTRICT_STATIONS, SEED
from bench.results import Result
from demo.sample_city import WITHIN_OPENING_HOURS, SampleCity, generate_sample_city
from schemas.events import (
    AmenityState,
    CheckInEvent,
    CheckInPayload,
    CheckInStatus,
    Event,
    EventType,
    HealthCheckEvent,
    HealthCheckPayload,
    VisitEvent,
    VisitPayload,
    VisitSource,
    WorkerKind,
)
from schemas.state import EventStatus
from schemas.stations import Station
from services.bootstrap import load_city
from services.system import EmbeddedSystem
from streams.clock import ManualClock
from streams.coverage import COUNTING_STATES
from waystation.settings import Settings

EVENTS = 50_000
QUICK_EVENTS = 5000
BATCH_EVENTS = 500
SUBMITTERS = 8
DRAIN_TIMEOUT_S = 600.0

# Event to map: a steady load below capacity, the probe's check-ins (how often, how far apart
# in event time), how it polls.
PACED_EVENTS_PER_S = 1000.0
PACED_EVENTS = 20_000
QUICK_PACED_EVENTS = 4000
PACED_BATCH_EVENTS = 50
PROBE_INTERVAL_S = 0.05
PROBE_STEP = timedelta(milliseconds=10)
PROBE_POLL_S = 0.001

# Targets
EVENTS_PER_S_TARGET = 10_000.0
EVENT_TO_MAP_TARGET_MS = 500.0

T_END = WITHIN_OPENING_HOURS  # the clock; every event is at or before it
WINDOW = timedelta(minutes=5)  # the stream's events are spread evenly over this window

# After every station has opened (a check-in and a health check each), the rest of the stream.
VISIT_SHARE = 0.6
HEALTH_SHARE = 0.3  # the rest are check-ins, each closing an open station or opening a closed one
OUTAGE_SHARE = 0.05  # health checks reporting a critical amenity out of service


@dataclass(frozen=True)
class Stream:
    events: list[Event]
    counts: dict[str, int]


def _event_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def build_stream(
    stations: Sequence[Station], count: int, settings: Settings, rng: random.Random
) -> Stream:
    """`count` valid events in time order, all within WINDOW before T_END: first every
    station checks in open and reports its health, then visits, health checks (a few with a
    critical amenity out) and check-ins that close or reopen a station, for random stations."""
    step = WINDOW / count
    start = T_END - WINDOW
    is_open = [False] * len(stations)
    critical = [
        [a for a in station.amenities if a in settings.critical_amenities] for station in stations
    ]
    events: list[Event] = []
    counts = {t.value: 0 for t in EventType}

    def check_in(j: int, at: datetime) -> Event:
        status = CheckInStatus.closed if is_open[j] else CheckInStatus.open
        is_open[j] = not is_open[j]
        return CheckInEvent(
            event_id=_event_id(rng),
            type=EventType.check_in,
            station_id=stations[j].station_id,
            occurred_at=at,
            payload=CheckInPayload(
                status=status, seats_available=stations[j].capacity, staffed=True
            ),
        )

    def health_check(j: int, at: datetime, outage: bool) -> Event:
        amenities = dict.fromkeys(stations[j].amenities, AmenityState.ok)
        if outage and critical[j]:
            amenities[rng.choice(critical[j])] = AmenityState.out_of_service
        return HealthCheckEvent(
            event_id=_event_id(rng),
            type=EventType.health_check,
            station_id=stations[j].station_id,
            occurred_at=at,
            payload=HealthCheckPayload(
                amenities=amenities, next_check_in_seconds=settings.heartbeat_interval_seconds
            ),
        )

    def visit(j: int, at: datetime) -> Event:
        return VisitEvent(
            event_id=_event_id(rng),
            type=EventType.visit,
            station_id=stations[j].station_id,
            occurred_at=at,
            payload=VisitPayload(
                worker_kind=rng.choice(list(WorkerKind)),
                party_size=1,
                dwell_minutes=round(rng.uniform(3, 40), 1),
                source=rng.choice(list(VisitSource)),
            ),
        )

    for i in range(count):
        at = start + step * (i + 1)
        if i < 2 * len(stations):
            j = i // 2
            event = check_in(j, at) if i % 2 == 0 else health_check(j, at, outage=False)
        else:
            j = rng.randrange(len(stations))
            draw = rng.random()
            if draw < VISIT_SHARE:
                event = visit(j, at)
            elif draw < VISIT_SHARE + HEALTH_SHARE:
                event = health_check(j, at, outage=rng.random() < OUTAGE_SHARE)
            else:
                event = check_in(j, at)
        events.append(event)
        counts[event.type.value] += 1
    return Stream(events, counts)


@dataclass(frozen=True)
class Timing:
    total_s: float
    statuses: dict[str, int]


def _system(city: SampleCity, data_dir: Path) -> EmbeddedSystem:
    settings = Settings.model_construct(data_dir=data_dir, simulate=False)
    system = EmbeddedSystem(settings, clock=ManualClock(T_END), autotick=False, simulate=False)
    load_city(system.store, city)
    return system


def partitions(events: Sequence[Event], count: int) -> list[list[list[Event]]]:
    """The stream split among `count` submitters by station (so each station's events keep
    their order, as each operator's system posts its own stations), in batches."""
    shares: list[list[Event]] = [[] for _ in range(count)]
    for event in events:
        shares[zlib.crc32(event.station_id.encode()) % count].append(event)
    return [
        [share[i : i + BATCH_EVENTS] for i in range(0, len(share), BATCH_EVENTS)]
        for share in shares
    ]


def _submit_concurrently(system: EmbeddedSystem, events: Sequence[Event]) -> None:
    """SUBMITTERS threads submit their shares, as concurrent requests would: their commits
    are grouped."""
    failures: list[BaseException] = []

    def submit(batches: list[list[Event]]) -> None:
        try:
            for batch in batches:
                system.runtime.submit(batch)
        except BaseException as exc:  # reported by the caller
            failures.append(exc)

    threads = [
        threading.Thread(target=submit, args=(share,)) for share in partitions(events, SUBMITTERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


class MapProbe(threading.Thread):
    """While the stream runs: a station the stream never touches is opened and closed, one
    check-in at a time, each timed from its submit until the live coverage of a cell in its
    catchment counts it, or no longer does."""

    def __init__(self, system: EmbeddedSystem, station: Station, first_at: datetime) -> None:
        super().__init__(name="bench-map-probe", daemon=True)
        self.system = system
        self.station = station
        self.at = first_at
        self.times_ms: list[float] = []
        self.stop = threading.Event()
        self.open = False
        runtime = system.runtime
        assert runtime.pipeline is not None
        cells = runtime.pipeline.catchments.cells(station.lat, station.lon)
        self.cell = min(cells & runtime.demand.demand.keys())

    def _counted(self) -> bool | None:
        """Whether the coverage of the probe's cell counts the probe station now (None: the
        station has not reached the cell's zone yet)."""
        runtime = self.system.runtime
        with runtime.reading():
            zone = runtime.zones.get(runtime.demand.grid.zone_of(self.cell))
            known = zone.stations.get(self.station.station_id) if zone else None
            return None if known is None else known.state in COUNTING_STATES

    def run(self) -> None:
        while not self.stop.wait(PROBE_INTERVAL_S):
            self.at += PROBE_STEP
            self.open = not self.open
            event = CheckInEvent(
                event_id=uuid.uuid4(),
                type=EventType.check_in,
                station_id=self.station.station_id,
                occurred_at=self.at,
                payload=CheckInPayload(
                    status=CheckInStatus.open if self.open else CheckInStatus.closed,
                    seats_available=self.station.capacity,
                    staffed=True,
                ),
            )
            started = time.perf_counter()
            self.system.runtime.submit([event])
            while self._counted() is not self.open:
                if time.perf_counter() - started > DRAIN_TIMEOUT_S:
                    raise TimeoutError("the probe's change never reached the map")
                time.sleep(PROBE_POLL_S)
            self.times_ms.append((time.perf_counter() - started) * 1e3)


def timed_run(city: SampleCity, stream: Stream, data_dir: Path) -> Timing:
    """The stream through a started system as fast as it goes: concurrent submits, then
    drained."""
    count = len(stream.events)
    system = _system(city, data_dir)
    try:
        system.start()
        gc.collect()
        started = time.perf_counter()
        _submit_concurrently(system, stream.events)
        system.runtime.drain(timeout=DRAIN_TIMEOUT_S)
        total_s = time.perf_counter() - started
        statuses = _statuses(system)
    finally:
        system.stop()
    if sum(statuses.values()) != count or statuses.get(EventStatus.applied) != count:
        raise RuntimeError(f"expected {count} events applied, the archive holds {statuses}")
    return Timing(total_s, statuses)


def _statuses(system: EmbeddedSystem) -> dict[str, int]:
    with system.store.transaction(readonly=True) as tx:
        counted = {status.value: tx.events.count(status=status) for status in EventStatus}
    return {status: n for status, n in counted.items() if n}


def paced_map_ms(city: SampleCity, stream: Stream, data_dir: Path, probe: Station) -> list[float]:
    """Event to map under a steady load: the stream submitted at PACED_EVENTS_PER_S (in
    batches of PACED_BATCH_EVENTS, one thread) while the probe measures."""
    system = _system(city, data_dir)
    try:
        system.start()
        gc.collect()
        prober = MapProbe(system, probe, T_END - WINDOW)
        prober.start()
        started = time.perf_counter()
        for sent in range(0, len(stream.events), PACED_BATCH_EVENTS):
            due = started + sent / PACED_EVENTS_PER_S
            time.sleep(max(0.0, due - time.perf_counter()))
            system.runtime.submit(stream.events[sent : sent + PACED_BATCH_EVENTS])
        prober.stop.set()
        prober.join()
        system.runtime.drain(timeout=DRAIN_TIMEOUT_S)
        statuses = _statuses(system)
    finally:
        system.stop()
    total = len(stream.events) + len(prober.times_ms)
    if statuses.get(EventStatus.applied) != total:
        raise RuntimeError(f"expected {total} events applied, the archive holds {statuses}")
    if not prober.times_ms:
        raise RuntimeError("the run was too short for the probe to measure anything")
    return prober.times_ms


def archive_only_s(city: SampleCity, stream: Stream, data_dir: Path) -> float:
    """The same concurrent submits on a fresh store whose runtime never starts: archiving
    with no processor competing for the interpreter."""
    system = _system(city, data_dir)
    try:
        gc.collect()
        started = time.perf_counter()
        _submit_concurrently(system, stream.events)
        return time.perf_counter() - started
    finally:
        system.stop()


def run(quick: bool) -> list[Result]:
    count = QUICK_EVENTS if quick else EVENTS
    city = generate_sample_city(seed=SEED, stations=DISTRICT_STATIONS)
    probe, streamed = city.stations[0], city.stations[1:]
    stream = build_stream(streamed, count, Settings.model_construct(), random.Random(SEED))
    paced_count = QUICK_PACED_EVENTS if quick else PACED_EVENTS
    paced = build_stream(streamed, paced_count, Settings.model_construct(), random.Random(SEED + 1))
    with tempfile.TemporaryDirectory(prefix="bench-embedded-") as tmp:
        timing = timed_run(city, stream, Path(tmp) / "run")
        map_ms = paced_map_ms(city, paced, Path(tmp) / "paced", probe)
        alone_s = archive_only_s(city, stream, Path(tmp) / "archive-only")
    plural = {"visit": "visits", "check_in": "check-ins", "health_check": "health checks"}
    mix = ", ".join(f"{n:,} {plural[kind]}" for kind, n in stream.counts.items())
    setup = (
        f"An `EmbeddedSystem` on a temporary SQLite store (WAL, synchronous=FULL) with the "
        f"sample district loaded (`generate_sample_city(seed={SEED}, "
        f"stations={DISTRICT_STATIONS})` through `load_city`; zones as the shipped defaults "
        "choose them, i.e. subdistricts), a manual clock, no clock thread, no simulator. "
        f"{count:,} valid events, built beforehand and spread over the "
        f"{WINDOW.total_seconds() / 60:g} minutes before the clock's time: every station "
        "checks in open and reports its health, then visits, health checks (some with a "
        "critical amenity out of service) and check-ins closing or reopening a station, for "
        f"random stations (seeded); split among {SUBMITTERS} threads by station (each "
        "station's events in order, as each operator's system posts its own) and submitted "
        f"with `runtime.submit` in batches of {BATCH_EVENTS} (what the HTTP ingest calls after "
        "validating a request, so request parsing and validation are not included; "
        "concurrent submits share commits), then `drain()`."
    )
    rate = "A rate, in events per second: higher is better."
    ms = np.array(map_ms)
    return [
        Result(
            "stream.embedded.events_per_s",
            count / timing.total_s,
            "per_s",
            target=EVENTS_PER_S_TARGET,
            about=(
                f"{rate} The embedded runtime end to end: events archived durably and "
                "processed, their state (station records, alerts, event statuses) saved and "
                f"the planners' coverage snapshot written. {setup} Value: events over the "
                "wall time from the first submit until drained; the processor thread works "
                "concurrently with the submits."
            ),
            detail=(
                f"This run: {mix}; {timing.total_s:.2f} s in all; archive afterwards: "
                + ", ".join(f"{n:,} {status}" for status, n in timing.statuses.items())
                + "."
            ),
        ),
        Result(
            "stream.embedded.event_to_map_p99_ms",
            float(np.percentile(ms, 99)),
            "ms",
            target=EVENT_TO_MAP_TARGET_MS,
            about=(
                "Event to map under a steady load: the same kind of stream "
                f"({paced_count:,} events) submitted at {PACED_EVENTS_PER_S:,.0f} events/s in "
                f"batches of {PACED_BATCH_EVENTS} to a fresh system, while a station the "
                "stream never touches is opened and closed by one check-in at a time (every "
                f"{PROBE_INTERVAL_S * 1e3:g} ms after the last one showed), each timed from "
                "its `runtime.submit` (archived durably) until the live coverage (what the API "
                "and the dashboard read) of a cell in its catchment counts it, or no longer "
                "does; 99th percentile. (At full speed, as above, ingest outruns the "
                "processor and the latency is the backlog's, bounded by "
                "`max_unapplied_events`.)"
            ),
            detail=(
                f"This run: {len(ms)} probes, median {np.median(ms):.1f} ms, max {ms.max():.1f} ms."
            ),
        ),
        Result(
            "stream.embedded.ingest_only.events_per_s",
            count / alone_s,
            "per_s",
            about=(
                f"{rate} The archiving half alone: the same concurrent submits on a fresh "
                "store whose runtime was never started (no processor competing for the "
                "interpreter): building each archive entry and its canonical JSON, then group "
                "commits, each one SQLite transaction committed durably."
            ),
            detail=f"This run: {alone_s:.2f} s for {count:,} events.",
        ),
    ]
