"""A small sample city for the planning tests: most stations open, a few closed or silent, so
that there are gaps to report, sites to suggest and stations to close."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from demo.sample_city import SampleCity, generate_sample_city
from services.bootstrap import load_city
from services.system import EmbeddedSystem
from streams.clock import ManualClock
from tests.conftest import T0, settings_for

STATIONS = 160
SUBDISTRICTS = 6
LEFT_SILENT = 10
CLOSED = 10
ZONE_THRESHOLD_WORKERS = 10.0


def envelope(kind: str, station_id: str, now: datetime, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "schema_version": 1,
        "station_id": station_id,
        "occurred_at": now.isoformat(),
        "payload": payload,
    }


def opening_events(city: SampleCity, now: datetime) -> list[dict[str, Any]]:
    events = []
    for n, station in enumerate(city.stations[LEFT_SILENT:]):
        status = "closed" if n < CLOSED else "open"
        events.append(
            envelope(
                "check_in",
                station.station_id,
                now,
                {"status": status, "seats_available": 6, "staffed": True},
            )
        )
        events.append(
            envelope(
                "health_check",
                station.station_id,
                now,
                {
                    "amenities": {"drinking_water": "ok", "rest_seats": "ok"},
                    "next_check_in_seconds": 3600,
                },
            )
        )
    return events


@dataclass
class PlanningCity:
    system: EmbeddedSystem
    city: SampleCity
    clock: ManualClock


@contextmanager
def planning_city(tmp_path: Path, **overrides: Any) -> Iterator[PlanningCity]:
    settings = settings_for(
        tmp_path,
        alert_open_grace_minutes=0,
        alert_resolve_grace_minutes=0,
        zone_uncovered_demand_workers=ZONE_THRESHOLD_WORKERS,
        heartbeat_interval_seconds=3600,
        **overrides,
    )
    clock = ManualClock(T0)
    sample = generate_sample_city(seed=7, stations=STATIONS, subdistricts=SUBDISTRICTS)
    system = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    load_city(system.store, sample)
    system.start()
    try:
        result = system.ingest.handle(opening_events(sample, clock.now()), clock.now())
        assert result.rejected == 0, result
        system.runtime.drain()
        system.runtime.tick()
        yield PlanningCity(system, sample, clock)
    finally:
        system.stop()
