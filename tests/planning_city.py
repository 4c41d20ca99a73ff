"""A small sample city for the planning tests: most stations open, a few closed or silent, so
that there are gaps to report, sites to suggest and stations to close."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from demo.sample_city import SampleCity
from tests.conftest import T0
from tests.served_city import RunningCity, alerting_settings, envelope, running_sample_city

STATIONS = 160
SUBDISTRICTS = 6
LEFT_SILENT = 10
CLOSED = 10
ZONE_THRESHOLD_WORKERS = 10.0


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


@contextmanager
def planning_city(tmp_path: Path, **overrides: Any) -> Iterator[RunningCity]:
    settings = alerting_settings(
        tmp_path, zone_uncovered_demand_workers=ZONE_THRESHOLD_WORKERS, **overrides
    )
    with running_sample_city(settings, T0, stations=STATIONS, subdistricts=SUBDISTRICTS) as running:
        system, sample, clock = running.system, running.city, running.clock
        result = system.ingest.handle(opening_events(sample, clock.now()), clock.now())
        assert result.rejected == 0, result
        system.runtime.drain()
        system.runtime.tick()
        yield running
