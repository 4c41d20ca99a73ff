"""The event envelope and its three payloads, as operators post them.

Validation is strict on purpose: a station app that sends a string for a number, a naive time
or an unknown field is told so, field by field, instead of having its data guessed at.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)

from schemas import SCHEMA_VERSION
from schemas.mobile import GeoPoint
from schemas.stations import STATION_ID_PATTERN, Amenity

DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)
# Before this no station of the network reported anything: older times are typos or clocks
# reset to the epoch. The deployment's value is `Settings.earliest_occurred_at`.
DEFAULT_EARLIEST_OCCURRED_AT = datetime(2020, 1, 1, tzinfo=UTC)

# Mainland mobile numbers and resident ID numbers: a worker_ref must never be one of these.
_PHONE = re.compile(r"^(\+|00)?(86)?1[3-9]\d{9}$")
_ID_NUMBER = re.compile(r"^\d{17}[\dXx]$|^\d{15}$")
# What people put between the digits of a number: spaces, dashes, dots, brackets, slashes.
_NUMBER_PUNCTUATION = frozenset(".()/\\_\u00b7\u30fb")
_CANONICAL_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DATE_TIME = r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?"
_RFC3339 = re.compile(rf"^{_DATE_TIME}([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$")
_NAIVE_RFC3339 = re.compile(rf"^{_DATE_TIME}$")


class EventType(StrEnum):
    visit = "visit"
    check_in = "check_in"
    health_check = "health_check"


class WorkerKind(StrEnum):
    courier = "courier"
    food_delivery = "food_delivery"
    ride_hailing = "ride_hailing"
    truck_driver = "truck_driver"
    sanitation = "sanitation"
    other = "other"


class Service(StrEnum):
    """Services a station offers besides its amenities."""

    health_screening = "health_screening"
    legal_aid = "legal_aid"
    counselling = "counselling"


class VisitSource(StrEnum):
    qr_scan = "qr_scan"
    staff_log = "staff_log"
    sensor = "sensor"


class CheckInStatus(StrEnum):
    open = "open"
    paused = "paused"
    closed = "closed"


class AmenityState(StrEnum):
    ok = "ok"
    degraded = "degraded"
    out_of_service = "out_of_service"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# Enum fields take their value (a string), and arrays a list, from parsed JSON as they do from
# JSON text: strict
# validation of Python input would insist on enum instances, and the ingest validates the
# parsed body once instead of serialising each item again.
_ByValue = Strict(False)


def digits_only_form(value: str) -> str:
    """A reference as a number would read once its look-alike characters are undone:
    NFKC (full-width digits and signs), every script's decimal digits as ASCII, and the
    separators people write between digits (spaces, dashes, dots, brackets) dropped."""
    text = unicodedata.normalize("NFKC", value).strip()
    text = text.removeprefix("tel:").removeprefix("TEL:")
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if (
            category.startswith("Z")
            or category in ("Pd", "Cf", "Cc")
            or char in _NUMBER_PUNCTUATION
        ):
            continue
        kept.append(str(unicodedata.decimal(char)) if char.isdecimal() else char)
    return "".join(kept)


def looks_personal(value: str) -> bool:
    """A phone or resident ID number, however it is written."""
    compact = digits_only_form(value)
    return bool(_PHONE.match(compact) or _ID_NUMBER.match(compact))


_ServiceUsed = Annotated[Amenity, _ByValue] | Annotated[Service, _ByValue]


class VisitPayload(_Strict):
    worker_kind: Annotated[WorkerKind, _ByValue]
    party_size: int = Field(1, ge=1, le=50)
    services_used: Annotated[tuple[_ServiceUsed, ...], _ByValue] = Field((), max_length=20)
    dwell_minutes: float | None = Field(None, ge=0, le=24 * 60, allow_inf_nan=False)
    source: Annotated[VisitSource, _ByValue]
    worker_ref: str | None = Field(
        None,
        min_length=4,
        max_length=128,
        description="Opaque reference chosen by the operator; hashed on ingest. "
        "Never a phone or ID number.",
    )

    @field_validator("worker_ref")
    @classmethod
    def _not_personal(cls, value: str | None) -> str | None:
        if value is not None and looks_personal(value):
            raise ValueError("looks like a phone or ID number; send an opaque reference")
        return value


class CheckInPayload(_Strict):
    status: Annotated[CheckInStatus, _ByValue]
    seats_available: int | None = Field(None, ge=0, le=10_000)
    staffed: bool = True
    location: GeoPoint | None = Field(
        None, description="Where a mobile unit is (WGS84), overriding its schedule"
    )


class HealthCheckPayload(_Strict):
    amenities: dict[Annotated[Amenity, _ByValue], Annotated[AmenityState, _ByValue]] = Field(
        default_factory=dict, description="State of each amenity the station has"
    )
    next_check_in_seconds: int = Field(
        300, ge=10, le=86_400, description="When the station will send its next heartbeat"
    )


class _Envelope(_Strict):
    event_id: UUID = Field(description="Made by the client; the idempotency key")
    schema_version: Literal[1] = SCHEMA_VERSION
    station_id: str = Field(pattern=STATION_ID_PATTERN)
    occurred_at: AwareDatetime = Field(description="RFC 3339 with offset")

    @field_validator("event_id", mode="before")
    @classmethod
    def _canonical_uuid(cls, value: Any) -> Any:
        # Answers echo the id in canonical form; a client must be able to match them.
        if isinstance(value, str):
            if not _CANONICAL_UUID.match(value):
                raise ValueError("is not a valid UUID in canonical 8-4-4-4-12 form")
            return UUID(value)
        return value

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        # pydantic also takes Unix seconds and other ISO 8601 shapes; the wire format is
        # RFC 3339 only, so that every client means the same instant by the same text.
        if isinstance(value, str):
            if _RFC3339.match(value):
                return datetime.fromisoformat(value.upper())
            if _NAIVE_RFC3339.match(value):
                raise ValueError("has no timezone offset; send e.g. 2026-11-21T09:30:00+08:00")
            raise ValueError(
                "is not a valid datetime in RFC 3339 form, e.g. 2026-11-21T09:30:00+08:00"
            )
        return value

    @field_validator("occurred_at")
    @classmethod
    def _plausible(cls, value: datetime, info: ValidationInfo) -> datetime:
        # An ingest policy, so it needs the ingest's clock: models built in code (simulators,
        # replays) carry no "now" in their context and are not judged against the wall clock.
        context = info.context or {}
        now: datetime | None = context.get("now")
        if now is None:
            return value
        earliest = context.get("earliest_occurred_at")
        skew = context.get("max_future_skew")
        return check_plausible_time(
            value,
            now,
            earliest=DEFAULT_EARLIEST_OCCURRED_AT if earliest is None else earliest,
            max_future_skew=DEFAULT_MAX_FUTURE_SKEW if skew is None else skew,
        )


def check_plausible_time(
    value: datetime, now: datetime, *, earliest: datetime, max_future_skew: timedelta
) -> datetime:
    """Refuse times no station can have meant: before `earliest`, further ahead of `now` than
    the skew, or so near the calendar's ends that their offset takes them out of it (year 1
    at +08:00 is in year 0 in UTC, which the store cannot hold)."""
    try:
        utc = value.astimezone(UTC)
        ahead = utc - now
    except OverflowError:
        raise ValueError("is outside the calendar once converted to UTC") from None
    if utc < earliest:
        raise ValueError(f"is before {earliest.date().isoformat()}, the earliest time accepted")
    if ahead > max_future_skew:
        minutes = max_future_skew.total_seconds() / 60
        raise ValueError(f"is more than {minutes:g} minutes in the future")
    return value


class VisitEvent(_Envelope):
    type: Literal[EventType.visit]
    payload: VisitPayload


class CheckInEvent(_Envelope):
    type: Literal[EventType.check_in]
    payload: CheckInPayload


class HealthCheckEvent(_Envelope):
    type: Literal[EventType.health_check]
    payload: HealthCheckPayload


Event = Annotated[VisitEvent | CheckInEvent | HealthCheckEvent, Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def ingest_context(
    now: datetime, *, max_future_skew: timedelta | None = None, earliest: datetime | None = None
) -> dict[str, Any]:
    """The validation context of events arriving now: what `occurred_at` is judged against."""
    return {"now": now, "max_future_skew": max_future_skew, "earliest_occurred_at": earliest}


def parse_event(
    raw: str | bytes, *, now: datetime | None = None, max_future_skew: timedelta | None = None
) -> Event:
    """Validate one event from its JSON text; raises pydantic.ValidationError."""
    context = ingest_context(now or datetime.now(UTC), max_future_skew=max_future_skew)
    return EVENT_ADAPTER.validate_json(raw, strict=True, context=context)


def validate_event(item: Any, context: dict[str, Any]) -> Event:
    """Validate one event already parsed from JSON (a dict), in one pass; raises
    pydantic.ValidationError. The same rules as `parse_event` on its text."""
    return EVENT_ADAPTER.validate_python(item, context=context)
