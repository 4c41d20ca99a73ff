"""station_overloaded: visitors in a trailing window above seats x turnover, with the same
grace periods as every alert."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from geo.catchment import CircleCatchments
from geo.demand import DemandLayer
from geo.grid import Grid
from schemas.alerts import AlertKind, AlertTransition
from schemas.events import parse_event
from streams.overload import VisitWindows
from streams.pipeline import Pipeline
from tests.conftest import T0, minutes, settings_for, tiny_city
from waystation.settings import Settings


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


WINDOW_MINUTES = 60


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=-90, max_value=30),  # visit time, minutes from the clock
            st.integers(min_value=1, max_value=9),  # party size
            st.integers(min_value=0, max_value=40),  # how far the clock moves first, minutes
        ),
        max_size=40,
    )
)
def test_the_visit_window_counts_every_visit_within_it(
    steps: list[tuple[int, int, int]],
) -> None:
    """Visits arrive late, early and out of order while the clock moves on; after each one
    the window holds exactly the visitors of the visits within the trailing window, as
    counting every visit so far would say."""
    config = Settings(overload_window_minutes=WINDOW_MINUTES)
    windows = VisitWindows({}, config)
    now = T0
    seen: list[tuple[datetime, int]] = []
    for offset, party, advance in steps:
        now += minutes(advance)
        event = visit(now + minutes(offset), party_size=party)
        seen.append((event.occurred_at, party))  # type: ignore[attr-defined]
        start = now - minutes(WINDOW_MINUTES)
        expected = sum(n for at, n in seen if at > start)
        assert windows.record(event, now) == expected  # type: ignore[arg-type]
        assert windows.visitors("T-0001", now) == expected
