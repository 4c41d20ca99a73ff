"""Derived records that flow between processors (and, in the distributed runtime, on topics)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import AmenityState, CheckInStatus
from schemas.mobile import GeoPoint
from schemas.reasons import NEVER_HEARD_FROM, Reason
from schemas.stations import Amenity, StationState


class EventStatus(StrEnum):
    """What became of an archived event."""

    pending = "pending"  # durable and acknowledged, not yet processed
    applied = "applied"
    stale = "stale"  # older than what the station already reported: kept, changes nothing
    late = "late"  # beyond the allowed lateness: archived only
    unknown_station = "unknown_station"  # not in the registry when processed: archived only
    failed = "failed"  # could not be applied; kept for inspection, never retried blindly
    discarded = "discarded"  # a failed event an admin cleared: kept for the record, never applied


class StationRecord(BaseModel):
    """What the ledger knows of one station: the latest of each kind of event, by event time.

    Keeping the latest per kind (not a log) is what lets late events be applied in any order
    without moving a station backwards.
    """

    model_config = ConfigDict(frozen=True)

    station_id: str
    check_in_status: CheckInStatus | None = None
    check_in_at: datetime | None = None
    seats_available: int | None = None
    staffed: bool | None = None
    amenities: dict[Amenity, AmenityState] = Field(default_factory=dict)
    health_at: datetime | None = None
    heartbeat_interval_s: int | None = None
    state: StationState = StationState.silent
    state_since: datetime | None = None
    state_reason: str = "never heard from"
    # Mobile units: where the latest check-in said the unit is (overrides its schedule), and
    # where coverage counts it now (None: at its registered location).
    check_in_location: GeoPoint | None = None
    placed: GeoPoint | None = None
    state_cause: Reason = NEVER_HEARD_FROM

    @property
    def last_heard_at(self) -> datetime | None:
        """The later of the latest check-in and health report (asked several times an event)."""
        check_in, health = self.check_in_at, self.health_at
        if check_in is None or health is None:
            return health if check_in is None else check_in
        return max(check_in, health)


class StationStateChanged(BaseModel):
    """Emitted when a station's effective state changes; keyed by station_id."""

    model_config = ConfigDict(frozen=True)

    station_id: str
    old: StationState | None
    new: StationState
    at: datetime
    supply_ratio: float = Field(0.0, ge=0, description="2SFCA step one: seats per worker")
    reason: str
    cause: Reason | None = Field(None, description="`reason` as a code and values")


class CoverageDelta(BaseModel):
    """One station's catchment cells within one zone moving between states; keyed by zone."""

    model_config = ConfigDict(frozen=True)

    zone: str
    station_id: str
    cells: tuple[str, ...]
    old: StationState | None
    new: StationState
    at: datetime
    supply_ratio: float = Field(0.0, ge=0, description="2SFCA step one: seats per worker")
