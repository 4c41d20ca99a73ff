"""A sample city running on an embedded system with a clock that moves only when a test says
so, optionally served over HTTP: the setup the browser, history, alert and planning tests share.
Alerts open and resolve at once and heartbeats are an hour apart, so a test's own events decide
every station's state."""

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
from tests.conftest import LiveServer, serve, settings_for
from waystation.settings import Settings

SEED = 7
STATIONS = 300
SUBDISTRICTS = 8
LEFT_SILENT = 6  # stations that never report, so every state shows on the map
CLOSED = 4
DEGRADED = 4
HEARTBEAT_INTERVAL_S = 3600  # longer than any test: no station falls silent on its own


def alerting_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings in which alerts open and resolve as soon as their condition holds."""
    fields: dict[str, Any] = {
        "alert_open_grace_minutes": 0,
        "alert_resolve_grace_minutes": 0,
        "heartbeat_interval_seconds": HEARTBEAT_INTERVAL_S,
    }
    return settings_for(tmp_path, **(fields | overrides))


def envelope(kind: str, station_id: str, now: datetime, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "schema_version": 1,
        "station_id": station_id,
        "occurred_at": now.isoformat(),
        "payload": payload,
    }


def events_for(city: SampleCity, now: datetime) -> list[dict[str, Any]]:
    """Open every station but a few: some never report, some close, some lose water."""
    events: list[dict[str, Any]] = []
    stations = city.stations[LEFT_SILENT:]
    for n, station in enumerate(stations):
        closed = n < CLOSED
        degraded = CLOSED <= n < CLOSED + DEGRADED
        water = "out_of_service" if degraded else "ok"
        events += [
            envelope(
                "check_in",
                station.station_id,
                now,
                {"status": "closed" if closed else "open", "seats_available": 6, "staffed": True},
            ),
            envelope(
                "health_check",
                station.station_id,
                now,
                {
                    "amenities": {"drinking_water": water, "rest_seats": "ok"},
                    "next_check_in_seconds": 3600,
                },
            ),
        ]
    return events


@dataclass
class RunningCity:
    system: EmbeddedSystem
    city: SampleCity
    clock: ManualClock


@dataclass
class ServedCity:
    live: LiveServer
    city: SampleCity
    clock: ManualClock


@contextmanager
def running_sample_city(
    settings: Settings, start: datetime, *, stations: int, subdistricts: int
) -> Iterator[RunningCity]:
    """A started system with a sample city loaded and no events yet; stopped on exit."""
    clock = ManualClock(start)
    sample = generate_sample_city(seed=SEED, stations=stations, subdistricts=subdistricts)
    system = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    load_city(system.store, sample)
    system.start()
    try:
        yield RunningCity(system, sample, clock)
    finally:
        system.stop()


@contextmanager
def served_sample_city(
    settings: Settings, start: datetime, *, stations: int, subdistricts: int
) -> Iterator[ServedCity]:
    """`running_sample_city` behind a live HTTP server."""
    with (
        running_sample_city(
            settings, start, stations=stations, subdistricts=subdistricts
        ) as running,
        serve(running.system) as live,
    ):
        yield ServedCity(live, running.city, running.clock)


def settle(live: LiveServer) -> None:
    """Applies every queued event, then the tick that turns them into states and alerts."""
    live.system.runtime.drain()
    live.system.runtime.tick()
    live.system.runtime.drain()


def post(live: LiveServer, events: list[dict[str, Any]]) -> None:
    """Posts events, checks they were taken, and lets the runtime apply them."""
    answer = live.client.post("/v1/events", json=events)
    assert answer.status_code in (200, 202), answer.text
    settle(live)


@contextmanager
def opened_sample_city(settings: Settings, start: datetime) -> Iterator[ServedCity]:
    """A served city of STATIONS after `events_for`: stations in every state on the map."""
    with served_sample_city(
        settings, start, stations=STATIONS, subdistricts=SUBDISTRICTS
    ) as served:
        now = served.clock.now()
        answer = served.live.client.post("/v1/events", json=events_for(served.city, now))
        assert answer.status_code == 200, answer.text
        assert answer.json()["rejected"] == 0
        settle(served.live)
        yield served


def opened(city: SampleCity) -> list[str]:
    """The stations `events_for` left open."""
    return [s.station_id for s in city.stations[LEFT_SILENT + CLOSED + DEGRADED :]]
