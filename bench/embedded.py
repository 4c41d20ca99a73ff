"""Embedded runtime benchmarks: events per second end to end (archived durably in SQLite, then
processed and their state saved), and the archiving half alone.

An `EmbeddedSystem` on a temporary SQLite store with the sample district loaded, a manual
clock, no clock thread and no simulator. A stream of valid events, built beforehand, goes
through `runtime.submit` in batches (the call the HTTP ingest makes once it has validated a
request), then `drain` waits until the processor has applied and saved everything.
"""

from __future__ import annotations

import gc
import random
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.coverage import DISTRICT_STATIONS, SEED
from bench.results import Result
from demo.sample_city import SampleCity, generate_sample_city
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
from waystation.settings import Settings

EVENTS = 50_000
QUICK_EVENTS = 5000
BATCH_EVENTS = 500
DRAIN_TIMEOUT_S = 600.0

T_END = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)  # the clock; every event is at or before it
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
    submit_s: float
    statuses: dict[str, int]


def _system(city: SampleCity, data_dir: Path) -> EmbeddedSystem:
    settings = Settings.model_construct(data_dir=data_dir, simulate=False)
    system = EmbeddedSystem(settings, clock=ManualClock(T_END), autotick=False, simulate=False)
    load_city(system.store, city)
    return system


def _submit_all(system: EmbeddedSystem, events: Sequence[Event]) -> float:
    """Submit `events` in batches; returns the seconds spent inside `submit`."""
    submit_s = 0.0
    for first in range(0, len(events), BATCH_EVENTS):
        batch = events[first : first + BATCH_EVENTS]
        before = time.perf_counter()
        system.runtime.submit(batch)
        submit_s += time.perf_counter() - before
    return submit_s


def timed_run(city: SampleCity, stream: Stream, data_dir: Path) -> Timing:
    """The stream through a started system: submits, then drained."""
    count = len(stream.events)
    system = _system(city, data_dir)
    try:
        system.start()
        gc.collect()
        started = time.perf_counter()
        submit_s = _submit_all(system, stream.events)
        system.runtime.drain(timeout=DRAIN_TIMEOUT_S)
        total_s = time.perf_counter() - started
        with system.store.transaction(readonly=True) as tx:
            statuses = {status.value: tx.events.count(status=status) for status in EventStatus}
    finally:
        system.stop()
    statuses = {status: n for status, n in statuses.items() if n}
    if sum(statuses.values()) != count or statuses.get(EventStatus.applied) != count:
        raise RuntimeError(f"expected {count} events applied, the archive holds {statuses}")
    return Timing(total_s, submit_s, statuses)


def archive_only_s(city: SampleCity, stream: Stream, data_dir: Path) -> float:
    """The same submits on a fresh store whose runtime never starts: archiving with no
    processor competing for the interpreter."""
    system = _system(city, data_dir)
    try:
        gc.collect()
        return _submit_all(system, stream.events)
    finally:
        system.stop()


def run(quick: bool) -> list[Result]:
    count = QUICK_EVENTS if quick else EVENTS
    city = generate_sample_city(seed=SEED, stations=DISTRICT_STATIONS)
    stream = build_stream(city.stations, count, Settings.model_construct(), random.Random(SEED))
    with tempfile.TemporaryDirectory(prefix="bench-embedded-") as tmp:
        timing = timed_run(city, stream, Path(tmp) / "run")
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
        f"random stations (seeded); submitted with `runtime.submit` in batches of "
        f"{BATCH_EVENTS} (what the HTTP ingest calls after validating a request, so request "
        "parsing and validation are not included), then `drain()`."
    )
    rate = "A rate, in events per second: higher is better."
    return [
        Result(
            "stream.embedded.events_per_s",
            count / timing.total_s,
            "per_s",
            about=(
                f"{rate} The embedded runtime end to end: events archived durably and "
                "processed, their state (station records, alerts, event statuses) saved. "
                f"{setup} Value: events over the wall time from the first submit until "
                "drained; the processor thread works concurrently with the submits."
            ),
            detail=(
                f"This run: {mix}; {timing.total_s:.2f} s in all, of which "
                f"{timing.submit_s:.2f} s inside `submit`; archive afterwards: "
                + ", ".join(f"{n:,} {status}" for status, n in timing.statuses.items())
                + "."
            ),
        ),
        Result(
            "stream.embedded.ingest_only.events_per_s",
            count / timing.submit_s,
            "per_s",
            about=(
                f"{rate} The archiving half of the run above: events over the time spent "
                "inside `runtime.submit` calls alone (building each archive entry and its "
                "canonical JSON, then one SQLite transaction per batch, committed durably), "
                "while the processor thread competes for the interpreter."
            ),
            detail=(
                f"This run: {timing.submit_s:.2f} s inside `submit` for {count:,} events. "
                "For comparison, the same submits on a fresh store whose runtime was never "
                f"started (no processor running) took {alone_s:.2f} s, "
                f"{count / alone_s:,.0f} events/s: the rest of the time inside `submit` above "
                "is waiting, for the interpreter while the processor works and for SQLite's "
                "write lock while it saves."
            ),
        ),
    ]
