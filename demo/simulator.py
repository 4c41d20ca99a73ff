"""A simulated network of station apps, so a fresh install has something live to show.

Stations check in, send heartbeats and log visits; now and then one goes quiet, closes for a
while or loses a critical amenity, which is what the coverage map and alerts exist to show.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

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
from schemas.stations import Station
from streams.backlog import RuntimeBusyError
from streams.clock import Clock
from streams.embedded import EmbeddedRuntime
from waystation.settings import Settings

log = logging.getLogger(__name__)

STEP_SECONDS = 1.0
HEARTBEAT_INTERVAL_SECONDS = 120
QUIET_EPISODES_PER_STATION_HOUR = 0.02
CLOSE_EPISODES_PER_STATION_HOUR = 0.02
OUTAGE_EPISODES_PER_STATION_HOUR = 0.03
QUIET_MINUTES = (10, 40)
CLOSED_MINUTES = (20, 90)
OUTAGE_MINUTES = (10, 60)
VISITS_PER_SEAT_HOUR = 0.4


@dataclass
class _SimulatedStation:
    station: Station
    next_heartbeat: datetime
    quiet_until: datetime | None = None
    closed_until: datetime | None = None
    outage_until: datetime | None = None
    started: bool = False


class Simulator:
    def __init__(
        self,
        runtime: EmbeddedRuntime,
        settings: Settings,
        clock: Clock,
        seed: int | None = None,
        *,
        submit: Callable[[Sequence[Event]], object] | None = None,
    ) -> None:
        """`submit`: where the events go (the ingest's sink: the runtime, or the broker)."""
        self.runtime = runtime
        self.submit = submit or runtime.submit
        self.settings = settings
        self.clock = clock
        self.random = random.Random(settings.sample_seed if seed is None else seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stations: list[_SimulatedStation] = []

    def start(self) -> None:
        assert self.runtime.registry is not None, "start the runtime first"
        now = self.clock.now()
        self._stations = [
            _SimulatedStation(station, next_heartbeat=now)
            for station in sorted(self.runtime.registry.values(), key=lambda s: s.station_id)
        ]
        self._thread = threading.Thread(target=self._run, name="waystation-simulator", daemon=True)
        self._thread.start()
        log.info("simulator feeding %d stations", len(self._stations))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        last = self.clock.now()
        while not self._stop.wait(STEP_SECONDS):
            now = self.clock.now()
            events = self.step(now, (now - last).total_seconds())
            last = now
            limit = self.settings.batch_max_events
            for start in range(0, len(events), limit):
                try:
                    self.submit(events[start : start + limit])
                except RuntimeBusyError as exc:  # simulated events can be dropped; not the thread
                    log.warning("simulated events dropped: %s", exc)

    def step(self, now: datetime, elapsed_s: float) -> list[Event]:
        """Everything the simulated stations send in `elapsed_s` seconds up to `now`."""
        hours = elapsed_s / 3600.0
        events: list[Event] = []
        for sim in self._stations:
            if not sim.started:
                sim.started = True
                events.append(self._check_in(sim, now, CheckInStatus.open))
            self._maybe_start_episode(sim, now, hours)
            if sim.closed_until is not None and now >= sim.closed_until:
                sim.closed_until = None
                events.append(self._check_in(sim, now, CheckInStatus.open))
            if sim.quiet_until is not None and now >= sim.quiet_until:
                sim.quiet_until = None
            if sim.outage_until is not None and now >= sim.outage_until:
                sim.outage_until = None
            if now >= sim.next_heartbeat and sim.quiet_until is None:
                events.append(self._health_check(sim, now))
            if sim.closed_until is None and sim.quiet_until is None:
                events.extend(self._visits(sim, now, hours))
        return events

    def _chance(self, per_hour: float, hours: float) -> bool:
        return self.random.random() < 1.0 - math.exp(-per_hour * hours)

    def _maybe_start_episode(self, sim: _SimulatedStation, now: datetime, hours: float) -> None:
        busy = sim.quiet_until or sim.closed_until or sim.outage_until
        if busy:
            return
        if self._chance(QUIET_EPISODES_PER_STATION_HOUR, hours):
            sim.quiet_until = now + timedelta(minutes=self.random.uniform(*QUIET_MINUTES))
        elif self._chance(CLOSE_EPISODES_PER_STATION_HOUR, hours):
            sim.closed_until = now + timedelta(minutes=self.random.uniform(*CLOSED_MINUTES))
        elif self._chance(OUTAGE_EPISODES_PER_STATION_HOUR, hours):
            sim.outage_until = now + timedelta(minutes=self.random.uniform(*OUTAGE_MINUTES))

    def _check_in(self, sim: _SimulatedStation, now: datetime, status: CheckInStatus) -> Event:
        if status is CheckInStatus.open:
            sim.next_heartbeat = now  # an opening station reports its health straight away
        return CheckInEvent(
            event_id=uuid.uuid4(),  # never seeded: ids must not repeat across runs
            type=EventType.check_in,
            station_id=sim.station.station_id,
            occurred_at=now,
            payload=CheckInPayload(
                status=status,
                seats_available=sim.station.capacity,
                staffed=self.random.random() < 0.7,
            ),
        )

    def _health_check(self, sim: _SimulatedStation, now: datetime) -> Event:
        amenities = dict.fromkeys(sim.station.amenities, AmenityState.ok)
        if sim.outage_until is not None:
            critical = [a for a in sim.station.amenities if a in self.settings.critical_amenities]
            if critical:
                amenities[self.random.choice(critical)] = AmenityState.out_of_service
        jitter = self.random.uniform(0.9, 1.1)
        sim.next_heartbeat = now + timedelta(seconds=HEARTBEAT_INTERVAL_SECONDS * jitter)
        return HealthCheckEvent(
            event_id=uuid.uuid4(),  # never seeded: ids must not repeat across runs
            type=EventType.health_check,
            station_id=sim.station.station_id,
            occurred_at=now,
            payload=HealthCheckPayload(
                amenities=amenities, next_check_in_seconds=HEARTBEAT_INTERVAL_SECONDS
            ),
        )

    def _visits(self, sim: _SimulatedStation, now: datetime, hours: float) -> list[Event]:
        expected = VISITS_PER_SEAT_HOUR * sim.station.capacity * hours
        count = 0
        threshold = math.exp(-expected)
        product = self.random.random()
        while product > threshold:  # Knuth's Poisson sampler: fine for small expectations
            count += 1
            product *= self.random.random()
        return [
            VisitEvent(
                event_id=uuid.uuid4(),  # never seeded: ids must not repeat across runs
                type=EventType.visit,
                station_id=sim.station.station_id,
                occurred_at=now,
                payload=VisitPayload(
                    worker_kind=self.random.choice(list(WorkerKind)),
                    party_size=1,
                    dwell_minutes=round(self.random.uniform(3, 40), 1),
                    source=self.random.choice(list(VisitSource)),
                ),
            )
            for _ in range(count)
        ]
