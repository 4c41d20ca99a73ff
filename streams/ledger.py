"""The station ledger: effective station state from check-ins, health checks and the clock.

Pure: state in (a MutableMapping of StationRecord, a dict or a Faust table), changes out.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime, timedelta

from schemas.events import (
    AmenityState,
    CheckInEvent,
    CheckInStatus,
    Event,
    HealthCheckEvent,
)
from schemas.reasons import NEVER_HEARD_FROM, Reason, ReasonCode
from schemas.state import EventStatus, StationRecord, StationStateChanged
from schemas.stations import StationState
from waystation.settings import Settings


def station_state(
    record: StationRecord, now: datetime, settings: Settings
) -> tuple[StationState, str]:
    """The effective state and, in English, why."""
    state, cause = station_cause(record, now, settings)
    return state, cause.text()


def station_cause(
    record: StationRecord, now: datetime, settings: Settings
) -> tuple[StationState, Reason]:
    """The effective state and why, as a code and values. Closed beats silent: a closed
    station owes no heartbeats; silent beats degraded: a station we cannot hear from is not
    counted on."""
    heard = record.last_heard_at
    if heard is None:
        return StationState.silent, NEVER_HEARD_FROM
    if record.check_in_status in (CheckInStatus.closed, CheckInStatus.paused):
        status = record.check_in_status.value
        return StationState.closed, Reason(code=ReasonCode.checked_in, values={"status": status})
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
    return StationState.available, Reason(code=ReasonCode.open_and_reporting)


def absorb(
    record: StationRecord, event: Event, settings: Settings
) -> tuple[StationRecord, EventStatus]:
    """Fold one event into a record. Each kind of fact keeps only its newest report, so late
    events are order-independent and can never move a station backwards."""
    watermark = record.last_heard_at
    if watermark is not None and event.occurred_at < watermark - timedelta(
        minutes=settings.allowed_lateness_minutes
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


class StationLedger:
    """Keeps StationRecords current and reports every change of effective state."""

    def __init__(self, records: MutableMapping[str, StationRecord], settings: Settings) -> None:
        self.records = records
        self.settings = settings

    def on_event(
        self, event: Event, now: datetime
    ) -> tuple[EventStatus, StationStateChanged | None]:
        record = self.records.get(event.station_id) or StationRecord(station_id=event.station_id)
        updated, applied = absorb(record, event, self.settings)
        if applied is not EventStatus.applied or updated is record:
            return applied, None
        return applied, self._settle(record, updated, now)

    def on_tick(self, now: datetime) -> list[StationStateChanged]:
        """Re-evaluate every station against the clock (silence is the passage of time)."""
        changes = []
        for record in list(self.records.values()):
            change = self._settle(record, record, now)
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

    def _settle(
        self, before: StationRecord, updated: StationRecord, now: datetime
    ) -> StationStateChanged | None:
        state, cause = station_cause(updated, now, self.settings)
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
