"""Opening hours: the parser against a minute-by-minute oracle, and the clock closing a
station outside its hours (in the district's time zone) without anyone checking in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.catchment import CircleCatchments
from geo.demand import DemandLayer
from geo.grid import Grid
from schemas.events import (
    AmenityState,
    CheckInEvent,
    CheckInPayload,
    CheckInStatus,
    EventType,
    HealthCheckEvent,
    HealthCheckPayload,
)
from schemas.opening_hours import DAYS, OpeningHoursError, parse_opening_hours
from schemas.stations import Amenity
from streams.pipeline import Pipeline
from tests.conftest import CENTRE, make_station
from waystation.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 23, tzinfo=SHANGHAI)  # a Monday, local midnight


SPAN = (
    st.tuples(st.integers(0, 47), st.integers(1, 48))
    .map(lambda p: (p[0] * 30, p[1] * 30 % 1440))
    .filter(lambda p: p[0] != p[1])
)


def text_of(rules: list[tuple[list[int], list[tuple[int, int]] | None]]) -> str:
    def hhmm(m: int) -> str:
        return f"{m // 60:02d}:{m % 60:02d}"

    parts = []
    for days, spans in rules:
        head = ",".join(DAYS[d] for d in days)
        body = "off" if spans is None else ",".join(f"{hhmm(s)}-{hhmm(e)}" for s, e in spans)
        parts.append(f"{head} {body}")
    return "; ".join(parts)


@settings(max_examples=200, deadline=None)
@given(
    rule=st.tuples(
        st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True),
        st.lists(SPAN, min_size=1, max_size=2),
    ),
    probe=st.integers(0, 7 * 1440 - 1),
)
def test_one_rule_matches_a_direct_reading(
    rule: tuple[list[int], list[tuple[int, int]]], probe: int
) -> None:
    """One rule: open on a named day within a range, or in the early minutes after a named
    day whose range runs past midnight."""
    days, spans = rule
    hours = parse_opening_hours(text_of([(days, spans)]))
    day, minute = divmod(probe, 1440)
    expected = any(
        (day in days and (s <= minute < e if e > s else s <= minute))
        or ((day - 1) % 7 in days and e < s and minute < e)
        for s, e in spans
    )
    assert hours.is_open(MONDAY + timedelta(minutes=probe)) == expected


def test_later_rules_replace_earlier_ones_for_their_days() -> None:
    hours = parse_opening_hours("Mo-Su 08:00-20:00; Sa 10:00-14:00; Su off")
    at = lambda day, hh: MONDAY + timedelta(days=day, hours=hh)  # noqa: E731
    assert hours.is_open(at(0, 8))
    assert not hours.is_open(at(0, 20))
    assert not hours.is_open(at(5, 9))
    assert hours.is_open(at(5, 13))
    assert not hours.is_open(at(6, 12))
    assert parse_opening_hours("24/7").is_open(at(3, 3))
    night = parse_opening_hours("Fr 22:00-06:00")
    assert night.is_open(at(4, 23))
    assert night.is_open(at(5, 5))
    assert not night.is_open(at(5, 7))


@pytest.mark.parametrize(
    "text",
    ["Mo-Fr", "Xx 08:00-10:00", "Mo 25:00-26:00", "Mo 08:00", "Mo 08:00-08:00", "PH off", ""],
)
def test_unreadable_hours_are_refused(text: str) -> None:
    with pytest.raises(OpeningHoursError):
        parse_opening_hours(text)
    with pytest.raises(ValueError, match="opening_hours"):
        make_station("H-1", *CENTRE, opening_hours=text)


def test_the_clock_closes_a_station_outside_its_hours() -> None:
    config = Settings(timezone="Asia/Shanghai", heartbeat_interval_seconds=3600)
    grid = Grid()
    station = make_station("H-1", *CENTRE, opening_hours="Mo-Fr 09:00-17:00")
    pipeline = Pipeline(
        settings=config,
        demand=DemandLayer.build(grid, []),
        registry={"H-1": station},
        catchments=CircleCatchments(grid, 500.0),
        records={},
        zones={},
        alerts={},
        visits={},
    )
    morning = (MONDAY + timedelta(hours=10)).astimezone(UTC)
    pipeline.restore(morning)
    pipeline.handle(
        CheckInEvent(
            event_id=uuid.uuid4(),
            type=EventType.check_in,
            station_id="H-1",
            occurred_at=morning,
            payload=CheckInPayload(status=CheckInStatus.open),
        ),
        morning,
    )
    pipeline.handle(
        HealthCheckEvent(
            event_id=uuid.uuid4(),
            type=EventType.health_check,
            station_id="H-1",
            occurred_at=morning + timedelta(minutes=40),
            payload=HealthCheckPayload(
                amenities={Amenity.drinking_water: AmenityState.ok}, next_check_in_seconds=3600
            ),
        ),
        morning + timedelta(minutes=40),
    )
    assert pipeline.ledger.records["H-1"].state.value == "available"
    evening = (MONDAY + timedelta(hours=17, minutes=1)).astimezone(UTC)
    pipeline.handle(
        HealthCheckEvent(
            event_id=uuid.uuid4(),
            type=EventType.health_check,
            station_id="H-1",
            occurred_at=evening - timedelta(minutes=5),
            payload=HealthCheckPayload(
                amenities={Amenity.drinking_water: AmenityState.ok}, next_check_in_seconds=3600
            ),
        ),
        evening - timedelta(minutes=5),
    )
    outcome = pipeline.tick(evening)  # nobody checked in closed: the clock did
    [change] = outcome.station_changes
    assert change.new.value == "closed"
    assert "opening hours" in change.reason
    assert not any(
        z.index.is_covered(c) for z in pipeline.zone_book.zones.values() for c in z.index.cells()
    )
