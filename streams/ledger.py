"""The station ledger: effective station state from check-ins, health checks and the clock.

Pure: state in (a MutableMapping of StationRecord, a dict or a Faust table), changes out.

One station's poison never wedges it: an event whose time no station can have meant is set
aside (`failed`) instead of applied, a fact of that kind already in a record is dropped from it
(the station's record is rebuilt from its plausible facts) and anything else one event makes
raise fails that event alone. Time arithmetic compares differences, which cannot leave the
calendar, so no stored time can make every later event of its station fail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from datetime import datetime, timedelta
from functools import cache

from schemas.events import (
    AmenityState,
    CheckInEvent,
    CheckInStatus,
    Event,
    HealthCheckEvent,
)
from schemas.mobile import GeoPoint
from schemas.reasons import NEVER_HEARD_FROM, Reason, ReasonCode
from schemas.state import EventStatus, StationRecord, StationStateChanged
from schemas.stations import Station, StationState
from waystation.settings import Settings

log = logging.getLogger(__name__)


# The causes that carry no values of their own, made once: every applied event settles its
# station, and an open or closed one gets one of these each time.
OPEN_AND_REPORTING = Reason(code=ReasonCode.open_and_reporting)
CHECKED_IN = {
    status: Reason(code=ReasonCode.checked_in, values={"status": status.value})
    for status in CheckInStatus
}

ClosedByClock = Callable[[StationRecord, datetime], Reason | None]
"""Why the clock alone closes a station at an instant (outside its opening hours, a mobile
unit between stops), or None."""


def counted_at(station: Station, record: StationRecord | None) -> GeoPoint:
    """Where coverage counts a station: a mobile unit where it was last placed (its stop, or
    where a check-in said it is), any other at its registered location."""
    if station.mobile and record is not None and record.placed is not None:
        return record.placed
    return GeoPoint(lat=station.lat, lon=station.lon)


def station_state(
    record: StationRecord,
    now: datetime,
    settings: Settings,
    closed_by_clock: Reason | None = None,
) -> tuple[StationState, str]:
    """The effective state and, in English, why."""
    state, cause = station_cause(record, now, settings, closed_by_clock)
    return state, cause.text()


def station_cause(
    record: StationRecord, now: datetime, settings: Settings, closed_by_clock: Reason | None = None
) -> tuple[StationState, Reason]:
    """The effective state and why, as a code and values. Closed beats silent: a closed
    station owes no heartbeats; silent beats degraded: a station we cannot hear from is not
    counted on. The clock closes a station (its hours) without anyone checking in."""
    heard = record.last_heard_at
    if heard is None:
        return StationState.silent, NEVER_HEARD_FROM
    if closed_by_clock is not None:
        return StationState.closed, closed_by_clock
    if record.check_in_status in (CheckInStatus.closed, CheckInStatus.paused):
        return StationState.closed, CHECKED_IN[record.check_in_status]
    interval = record.heartbeat_interval_s or settings.heartbeat_interval_seconds
    deadline = heard + timedelta(seconds=interval * settings.silence_missed_heartbeats)
    if now > deadline:
        since = heard.isoformat()
        return StationState.silent, Reason(code=ReasonCode.no_heartbeat, values={"since": since})
    out = sorted(
        amenity.value
        for amenity, amenity_state in record.amenities.items()
        if amenity in settings.critical_amenities and amenity_state is AmenityState.out_of_service
    )
    if out:
        cause = Reason(code=ReasonCode.amenities_out, values={"amenities": out})
        return StationState.degraded, cause
    return StationState.available, OPEN_AND_REPORTING


def absorb(
    record: StationRecord, event: Event, settings: Settings
) -> tuple[StationRecord, EventStatus]:
    """Fold one event into a record. Each kind of fact keeps only its newest report, so late
    events are order-independent and can never move a station backwards."""
    watermark = record.last_heard_at
    if watermark is not None and watermark - event.occurred_at > _minutes(
        settings.allowed_lateness_minutes
    ):
        return record, EventStatus.late
    match event:
        case CheckInEvent():
            if record.check_in_at is not None and (event.occurred_at, _check_in_rank(event)) <= (
                record.check_in_at,
                _recorded_check_in_rank(record),
            ):
                return record, EventStatus.stale
            return record.model_copy(
                update={
                    "check_in_status": event.payload.status,
                    "check_in_at": event.occurred_at,
                    "seats_available": event.payload.seats_available,
                    "staffed": event.payload.staffed,
                    "check_in_location": event.payload.location,
                }
            ), EventStatus.applied
        case HealthCheckEvent():
            if record.health_at is not None and (event.occurred_at, _health_rank(event)) <= (
                record.health_at,
                _recorded_health_rank(record),
            ):
                return record, EventStatus.stale
            return record.model_copy(
                update={
                    "amenities": dict(event.payload.amenities),
                    "health_at": event.occurred_at,
                    "heartbeat_interval_s": event.payload.next_check_in_seconds,
                }
            ), EventStatus.applied
        case _:
            return record, EventStatus.applied  # visits are counted, they do not change state


# Two reports of the same kind at the same instant are ranked by content, so that the outcome
# does not depend on arrival order; between check-ins the more cautious status wins.
_STATUS_RANK = {CheckInStatus.open: 0, CheckInStatus.paused: 1, CheckInStatus.closed: 2}
CheckInRank = tuple[int, int, bool]
HealthRank = tuple[tuple[tuple[str, str], ...], int]


def _check_in_rank(event: CheckInEvent) -> CheckInRank:
    payload = event.payload
    seats = -1 if payload.seats_available is None else payload.seats_available
    return _STATUS_RANK[payload.status], seats, payload.staffed


def _recorded_check_in_rank(record: StationRecord) -> CheckInRank:
    assert record.check_in_status is not None
    seats = -1 if record.seats_available is None else record.seats_available
    return _STATUS_RANK[record.check_in_status], seats, bool(record.staffed)


def _health_rank(event: HealthCheckEvent) -> HealthRank:
    items = tuple(sorted((a.value, s.value) for a, s in event.payload.amenities.items()))
    return items, event.payload.next_check_in_seconds


def _recorded_health_rank(record: StationRecord) -> HealthRank:
    items = tuple(sorted((a.value, s.value) for a, s in record.amenities.items()))
    return items, record.heartbeat_interval_s or 0


def plausible(at: datetime, now: datetime, settings: Settings) -> bool:
    """Whether a station can have meant this time: not before the earliest accepted, not
    further ahead of `now` than the allowed skew (the same window the ingest enforces)."""
    try:
        return at >= settings.earliest_occurred_at and at - now <= _minutes(
            settings.max_future_skew_minutes
        )
    except OverflowError:
        return False


@cache
def _minutes(minutes: float) -> timedelta:
    """A setting in minutes as a timedelta, made once: every event asks several times."""
    return timedelta(minutes=minutes)


def without_implausible_facts(
    record: StationRecord, now: datetime, settings: Settings
) -> StationRecord:
    """The record with any check-in or health report of an impossible time dropped (such a
    report, say from year 9999, would make every later one stale for ever)."""
    update: dict[str, object] = {}
    if record.check_in_at is not None and not plausible(record.check_in_at, now, settings):
        update |= {
            "check_in_status": None,
            "check_in_at": None,
            "seats_available": None,
            "staffed": None,
        }
    if record.health_at is not None and not plausible(record.health_at, now, settings):
        update |= {"amenities": {}, "health_at": None, "heartbeat_interval_s": None}
    if not update:
        return record
    log.warning("station %s: dropped reports of impossible times", record.station_id)
    return record.model_copy(update=update)


class StationLedger:
    """Keeps StationRecords current and reports every change of effective state."""

    def __init__(
        self,
        records: MutableMapping[str, StationRecord],
        settings: Settings,
        closed_by_clock: ClosedByClock | None = None,
    ) -> None:
        self.records = records
        self.settings = settings
        self.closed_by_clock = closed_by_clock

    def on_event(
        self, event: Event, now: datetime
    ) -> tuple[EventStatus, StationStateChanged | None]:
        stored = self.records.get(event.station_id) or StationRecord(station_id=event.station_id)
        record = without_implausible_facts(stored, now, self.settings)
        if not plausible(event.occurred_at, now, self.settings):
            status, final = EventStatus.failed, record
        else:
            try:
                final, status = absorb(record, event, self.settings)
            except Exception:  # this event alone fails; its station carries on
                log.exception("event %s could not be applied; set aside", event.event_id)
                status, final = EventStatus.failed, record
        if final is stored:
            return status, None
        return status, self._settle(stored, final, now)

    def on_tick(self, now: datetime) -> list[StationStateChanged]:
        """Re-evaluate every station against the clock (silence is the passage of time)."""
        changes = []
        for record in list(self.records.values()):
            try:
                plausible_record = without_implausible_facts(record, now, self.settings)
                change = self._settle(record, plausible_record, now)
            except Exception:  # one station's record must not stop the clock for all
                log.exception("station %s could not be re-evaluated", record.station_id)
                continue
            if change is not None:
                changes.append(change)
        return changes

    def register(self, station_id: str, now: datetime) -> StationStateChanged | None:
        """A newly known station enters the ledger silent, until it is heard from."""
        if station_id in self.records:
            return None
        record = StationRecord(station_id=station_id, state_since=now)
        self.records[station_id] = record
        return StationStateChanged(
            station_id=station_id,
            old=None,
            new=record.state,
            at=now,
            reason=record.state_reason,
            cause=record.state_cause,
        )

    def settle(self, station_id: str, now: datetime) -> StationStateChanged | None:
        """Re-evaluate one station now (its definition changed: new hours, a new schedule)."""
        record = self.records.get(station_id)
        return self._settle(record, record, now) if record is not None else None

    def _settle(
        self, before: StationRecord, updated: StationRecord, now: datetime
    ) -> StationStateChanged | None:
        clock = self.closed_by_clock(updated, now) if self.closed_by_clock else None
        state, cause = station_cause(updated, now, self.settings, clock)
        reason = cause.text()
        if state == before.state and before.station_id in self.records:
            if updated is not before or cause != before.state_cause:
                self.records[updated.station_id] = updated.model_copy(
                    update={"state_reason": reason, "state_cause": cause}
                )
            return None
        old = before.state if before.station_id in self.records else None
        self.records[updated.station_id] = updated.model_copy(
            update={
                "state": state,
                "state_since": now,
                "state_reason": reason,
                "state_cause": cause,
            }
        )
        return StationStateChanged(
            station_id=updated.station_id, old=old, new=state, at=now, reason=reason, cause=cause
        )
