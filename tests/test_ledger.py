"""The station ledger over a plain dict: effective state from check-ins, heartbeats and the
clock, late and stale events, and order independence."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from schemas.reasons import Reason, ReasonCode
from schemas.state import EventStatus, StationRecord
from schemas.stations import Amenity, StationState
from streams.ledger import StationLedger, absorb, station_cause, station_state
from waystation.settings import Settings

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
STATION = "CY-0001"
SETTINGS = Settings(
    heartbeat_interval_seconds=300,
    silence_missed_heartbeats=2,
    allowed_lateness_minutes=60,
    critical_amenities=(Amenity.drinking_water, Amenity.rest_seats),
)


def m(n: float) -> timedelta:
    return timedelta(minutes=n)


def check_in(
    at: datetime, status: CheckInStatus = CheckInStatus.open, seats: int | None = 5
) -> CheckInEvent:
    return CheckInEvent(
        event_id=uuid.uuid4(),
        type=EventType.check_in,
        station_id=STATION,
        occurred_at=at,
        payload=CheckInPayload(status=status, seats_available=seats),
    )


def health(
    at: datetime,
    amenities: dict[Amenity, AmenityState] | None = None,
    interval_s: int = 300,
) -> HealthCheckEvent:
    return HealthCheckEvent(
        event_id=uuid.uuid4(),
        type=EventType.health_check,
        station_id=STATION,
        occurred_at=at,
        payload=HealthCheckPayload(
            amenities=amenities
            if amenities is not None
            else {Amenity.drinking_water: AmenityState.ok},
            next_check_in_seconds=interval_s,
        ),
    )


def visit(at: datetime) -> VisitEvent:
    return VisitEvent(
        event_id=uuid.uuid4(),
        type=EventType.visit,
        station_id=STATION,
        occurred_at=at,
        payload=VisitPayload(worker_kind=WorkerKind.courier, source=VisitSource.qr_scan),
    )


def fold(*events: Event) -> StationRecord:
    record = StationRecord(station_id=STATION)
    for e in events:
        record, _ = absorb(record, e, SETTINGS)
    return record


def state_at(record: StationRecord, now: datetime) -> StationState:
    return station_state(record, now, SETTINGS)[0]


# --- station_state -------------------------------------------------------------------------


def test_never_heard_is_silent() -> None:
    state, reason = station_state(StationRecord(station_id=STATION), T0, SETTINGS)
    assert state is StationState.silent
    assert "never" in reason


def test_visits_alone_do_not_make_a_station_heard() -> None:
    record, status = absorb(StationRecord(station_id=STATION), visit(T0), SETTINGS)
    assert status is EventStatus.applied
    assert record.last_heard_at is None
    assert state_at(record, T0) is StationState.silent


def test_open_check_in_is_available() -> None:
    record = fold(check_in(T0))
    assert station_state(record, T0 + m(1), SETTINGS) == (
        StationState.available,
        "open and reporting",
    )


@pytest.mark.parametrize("status", [CheckInStatus.closed, CheckInStatus.paused])
def test_closed_or_paused_is_closed(status: CheckInStatus) -> None:
    record = fold(check_in(T0), health(T0), check_in(T0 + m(1), status))
    state, reason = station_state(record, T0 + m(2), SETTINGS)
    assert state is StationState.closed
    assert reason == f"checked in {status.value}"
    _, cause = station_cause(record, T0 + m(2), SETTINGS)
    assert cause == Reason(code=ReasonCode.checked_in, values={"status": status.value})


def test_closed_beats_silent() -> None:
    record = fold(check_in(T0, CheckInStatus.closed))
    assert state_at(record, T0 + timedelta(days=3)) is StationState.closed


def test_heartbeat_deadline_from_the_default_interval() -> None:
    record = fold(check_in(T0))
    deadline = T0 + timedelta(seconds=300 * 2)
    assert state_at(record, deadline - timedelta(microseconds=1)) is StationState.available
    assert state_at(record, deadline) is StationState.available
    assert state_at(record, deadline + timedelta(microseconds=1)) is StationState.silent


def test_heartbeat_deadline_follows_the_station_interval_and_last_heard() -> None:
    record = fold(check_in(T0), health(T0 + m(3), interval_s=60))
    deadline = T0 + m(3) + timedelta(seconds=60 * 2)
    assert state_at(record, deadline - timedelta(seconds=1)) is StationState.available
    state, reason = station_state(record, deadline + timedelta(seconds=1), SETTINGS)
    assert state is StationState.silent
    assert (T0 + m(3)).isoformat() in reason


def test_heartbeat_deadline_scales_with_missed_heartbeats() -> None:
    lenient = SETTINGS.model_copy(update={"silence_missed_heartbeats": 3.5})
    record = fold(health(T0, interval_s=100))
    assert station_state(record, T0 + timedelta(seconds=349), lenient)[0] is StationState.available
    assert station_state(record, T0 + timedelta(seconds=351), lenient)[0] is StationState.silent


def test_critical_amenity_out_is_degraded() -> None:
    amenities = {Amenity.drinking_water: AmenityState.out_of_service, Amenity.wifi: AmenityState.ok}
    record = fold(check_in(T0), health(T0, amenities))
    state, reason = station_state(record, T0, SETTINGS)
    assert state is StationState.degraded
    assert "drinking_water" in reason


@pytest.mark.parametrize(
    "amenities",
    [
        pytest.param({Amenity.wifi: AmenityState.out_of_service}, id="non-critical-out"),
        pytest.param({Amenity.drinking_water: AmenityState.degraded}, id="critical-degraded"),
        pytest.param({}, id="none-reported"),
    ],
)
def test_other_amenity_trouble_stays_available(amenities: dict[Amenity, AmenityState]) -> None:
    record = fold(check_in(T0), health(T0, amenities))
    assert state_at(record, T0) is StationState.available


def test_silent_beats_degraded() -> None:
    record = fold(check_in(T0), health(T0, {Amenity.rest_seats: AmenityState.out_of_service}))
    assert state_at(record, T0 + m(11)) is StationState.silent


# --- absorb: stale and late ----------------------------------------------------------------


def test_older_check_in_is_stale_and_changes_nothing() -> None:
    record = fold(check_in(T0 + m(10), CheckInStatus.open))
    late_close = check_in(T0 + m(5), CheckInStatus.closed)
    after, status = absorb(record, late_close, SETTINGS)
    assert status is EventStatus.stale
    assert after == record
    assert state_at(after, T0 + m(11)) is StationState.available


def test_same_time_check_ins_resolve_to_the_more_cautious_status() -> None:
    record = fold(check_in(T0))
    after, status = absorb(record, check_in(T0, CheckInStatus.closed), SETTINGS)
    assert status is EventStatus.applied
    assert after.check_in_status is CheckInStatus.closed
    again, status = absorb(after, check_in(T0, CheckInStatus.open), SETTINGS)
    assert status is EventStatus.stale
    assert again == after


def test_older_health_check_is_stale_but_a_late_check_in_of_its_own_kind_applies() -> None:
    record = fold(health(T0 + m(10)))
    after, status = absorb(record, health(T0 + m(5), {}), SETTINGS)
    assert (status, after) == (EventStatus.stale, record)
    # A check-in older than the last health check is still the newest check-in.
    after, status = absorb(record, check_in(T0 + m(5), CheckInStatus.paused), SETTINGS)
    assert status is EventStatus.applied
    assert after.check_in_status is CheckInStatus.paused
    assert after.last_heard_at == T0 + m(10)


def test_event_beyond_allowed_lateness_is_late() -> None:
    record = fold(check_in(T0), health(T0 + m(90)))
    watermark = T0 + m(90)
    too_old = check_in(watermark - m(60) - timedelta(seconds=1), CheckInStatus.closed)
    after, status = absorb(record, too_old, SETTINGS)
    assert (status, after) == (EventStatus.late, record)
    just_in = check_in(watermark - m(60), CheckInStatus.closed)
    after, status = absorb(record, just_in, SETTINGS)
    assert status is EventStatus.applied
    assert after.check_in_status is CheckInStatus.closed


def test_late_visit_is_late_too() -> None:
    record = fold(check_in(T0 + m(120)))
    assert absorb(record, visit(T0), SETTINGS)[1] is EventStatus.late


# --- the ledger over a dict ----------------------------------------------------------------


def test_ledger_reports_each_change_once() -> None:
    records: dict[str, StationRecord] = {}
    ledger = StationLedger(records, SETTINGS)
    status, change = ledger.on_event(check_in(T0), T0)
    assert status is EventStatus.applied
    assert change is not None
    assert (change.old, change.new, change.at) == (None, StationState.available, T0)

    status, change = ledger.on_event(health(T0 + m(1)), T0 + m(1))
    assert (status, change) == (EventStatus.applied, None)

    status, change = ledger.on_event(check_in(T0 + m(0.5), CheckInStatus.closed), T0 + m(1))
    assert status is EventStatus.applied
    assert change is not None
    assert (change.old, change.new) == (StationState.available, StationState.closed)
    assert records[STATION].state is StationState.closed
    assert records[STATION].state_since == T0 + m(1)

    status, change = ledger.on_event(check_in(T0, CheckInStatus.open), T0 + m(2))
    assert (status, change) == (EventStatus.stale, None)
    assert records[STATION].state is StationState.closed


def test_ledger_tick_turns_quiet_stations_silent_once() -> None:
    records: dict[str, StationRecord] = {}
    ledger = StationLedger(records, SETTINGS)
    ledger.on_event(check_in(T0), T0)
    assert ledger.on_tick(T0 + m(10)) == []
    changes = ledger.on_tick(T0 + m(10) + timedelta(seconds=1))
    assert [(c.old, c.new) for c in changes] == [(StationState.available, StationState.silent)]
    assert ledger.on_tick(T0 + m(20)) == []
    _, change = ledger.on_event(health(T0 + m(20)), T0 + m(20))
    assert change is not None
    assert (change.old, change.new) == (StationState.silent, StationState.available)


def test_register_enters_silent_once() -> None:
    records: dict[str, StationRecord] = {}
    ledger = StationLedger(records, SETTINGS)
    change = ledger.register(STATION, T0)
    assert change is not None
    assert (change.old, change.new) == (None, StationState.silent)
    assert ledger.register(STATION, T0 + m(1)) is None
    _, change = ledger.on_event(check_in(T0 + m(1)), T0 + m(1))
    assert change is not None
    assert (change.old, change.new) == (StationState.silent, StationState.available)


# --- properties ----------------------------------------------------------------------------

AMENITY_STATES = st.dictionaries(
    st.sampled_from([Amenity.drinking_water, Amenity.rest_seats, Amenity.wifi]),
    st.sampled_from(list(AmenityState)),
    max_size=3,
)


@st.composite
def event_sets(draw: st.DrawFn) -> list[Event]:
    """Check-ins and health checks at distinct times, all within the allowed lateness of each
    other (so that none is late whatever the order)."""
    seconds = draw(st.lists(st.integers(0, 3600), min_size=1, max_size=8, unique=True))
    events: list[Event] = []
    for s in seconds:
        at = T0 + timedelta(seconds=s)
        if draw(st.booleans()):
            events.append(check_in(at, draw(st.sampled_from(list(CheckInStatus)))))
        else:
            interval = draw(st.sampled_from([60, 300, 900]))
            events.append(health(at, draw(AMENITY_STATES), interval))
    return events


@settings(max_examples=100, deadline=None)
@given(events=event_sets(), data=st.data(), later=st.integers(0, 7200))
def test_any_order_gives_the_same_record(
    events: list[Event], data: st.DataObject, later: int
) -> None:
    now = T0 + timedelta(seconds=3600 + later)
    shuffled = data.draw(st.permutations(events))
    finals = []
    for order in (events, shuffled):
        records: dict[str, StationRecord] = {}
        ledger = StationLedger(records, SETTINGS)
        statuses = [ledger.on_event(e, now)[0] for e in order]
        assert EventStatus.late not in statuses
        finals.append(records[STATION])
    assert finals[0] == finals[1]
    # The facts kept are the newest of each kind.
    check_ins = [e for e in events if isinstance(e, CheckInEvent)]
    healths = [e for e in events if isinstance(e, HealthCheckEvent)]
    record = finals[0]
    if check_ins:
        newest = max(check_ins, key=lambda e: e.occurred_at)
        assert (record.check_in_at, record.check_in_status) == (
            newest.occurred_at,
            newest.payload.status,
        )
    if healths:
        newest_health = max(healths, key=lambda e: e.occurred_at)
        assert record.health_at == newest_health.occurred_at
        assert record.amenities == dict(newest_health.payload.amenities)


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.one_of(
                st.builds(
                    lambda s, c: check_in(T0 + timedelta(seconds=s), c),
                    st.integers(0, 7200),
                    st.sampled_from(list(CheckInStatus)),
                ),
                st.builds(
                    lambda s, a: health(T0 + timedelta(seconds=s), a),
                    st.integers(0, 7200),
                    AMENITY_STATES,
                ),
                st.builds(lambda s: visit(T0 + timedelta(seconds=s)), st.integers(0, 7200)),
            ),
            st.integers(0, 900),
        ),
        max_size=15,
    )
)
def test_a_change_is_emitted_exactly_when_the_state_changes(
    steps: list[tuple[Event, int]],
) -> None:
    records: dict[str, StationRecord] = {}
    ledger = StationLedger(records, SETTINGS)
    now = T0
    for event, elapsed in steps:
        now += timedelta(seconds=elapsed)
        before = records.get(STATION)
        before_state = before.state if before is not None else None
        status, change = ledger.on_event(event, now)
        after = records.get(STATION)
        after_state = after.state if after is not None else None
        if before_state != after_state:
            assert change is not None
            assert (change.old, change.new, change.at) == (before_state, after_state, now)
            assert after is not None
            assert after.state_since == now
        else:
            assert change is None
        if status is not EventStatus.applied:
            assert after == before, "a stale or late event must change nothing"
        if (
            after is not None
            and status is EventStatus.applied
            and not isinstance(event, VisitEvent)
        ):
            # What the record says is what the clock and its facts say.
            assert (after.state, after.state_reason) == station_state(after, now, SETTINGS)


def record_fields(record: StationRecord) -> dict[str, Any]:
    return record.model_dump(exclude={"state", "state_since", "state_reason", "state_cause"})


def test_tied_check_ins_resolve_the_same_in_any_order() -> None:
    opened, closed = check_in(T0, CheckInStatus.open), check_in(T0, CheckInStatus.closed)
    assert record_fields(fold(opened, closed)) == record_fields(fold(closed, opened))
