"""station_overloaded: visitors in a trailing window above seats x turnover, with the same
grace periods as every alert."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

from geo.catchment import CircleCatchments
from geo.demand import DemandLayer
from geo.grid import Grid
from schemas.alerts import AlertKind, AlertTransition
from schemas.events import parse_event
from streams.pipeline import Pipeline
from tests.conftest import T0, minutes, settings_for, tiny_city


def pipeline(tmp_path: Path) -> Pipeline:
    settings = settings_for(tmp_path, overload_window_minutes=60, overload_visits_per_seat=2)
    city = tiny_city(settings)
    grid = Grid(settings.grid_resolution, settings.zone_resolution)
    built = Pipeline(
        settings=settings,
        demand=DemandLayer.build(grid, city.demand),
        registry={s.station_id: s for s in city.stations},
        catchments=CircleCatchments(grid, settings.catchment_radius_m),
        records={},
        zones={},
        alerts={},
        visits={},
    )
    built.restore(T0)
    return built


def visit(at: datetime, party_size: int = 5) -> object:
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "visit",
        "station_id": "T-0001",
        "occurred_at": at.isoformat(),
        "payload": {"worker_kind": "courier", "party_size": party_size, "source": "staff_log"},
    }
    return parse_event(json.dumps(body), now=at)


def overload_transitions(events: list) -> list[AlertTransition]:  # type: ignore[type-arg]
    return [e.transition for e in events if e.alert.kind is AlertKind.station_overloaded]


def test_overload_opens_after_grace_and_resolves_when_the_window_slides(tmp_path: Path) -> None:
    chain = pipeline(tmp_path)  # T-0001 has 10 seats: the limit is 20 visitors an hour
    seen = []
    for i in range(4):  # 20 visitors: at the limit, not above it
        seen += chain.handle(visit(T0 + minutes(i)), T0 + minutes(i)).alert_events
    assert overload_transitions(seen) == []
    seen += chain.handle(visit(T0 + minutes(5), 1), T0 + minutes(5)).alert_events
    assert overload_transitions(seen) == [], "nobody is told before the grace period"
    seen += chain.tick(T0 + minutes(11)).alert_events
    assert overload_transitions(seen) == [AlertTransition.opened]
    # An hour after the burst the window is empty again; the alert resolves after its grace.
    seen += chain.tick(T0 + minutes(66)).alert_events
    assert overload_transitions(seen) == [AlertTransition.opened]
    seen += chain.tick(T0 + minutes(72)).alert_events
    assert overload_transitions(seen) == [AlertTransition.opened, AlertTransition.resolved]
    assert chain.visit_windows.windows == {}
