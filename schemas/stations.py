"""What a station is: the registry record operators and unions agree on."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.mobile import MAX_STOPS, MobileStop, check_stops
from schemas.opening_hours import parse_opening_hours

STATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class StationKind(StrEnum):
    warm_station = "warm_station"
    union_station = "union_station"
    outdoor_worker_station = "outdoor_worker_station"
    worker_home = "worker_home"
    partner_store = "partner_store"
    mobile_unit = "mobile_unit"  # follows a schedule of stops: a health-check bus, a service van


class Amenity(StrEnum):
    drinking_water = "drinking_water"
    microwave = "microwave"
    phone_charging = "phone_charging"
    ebike_charging = "ebike_charging"
    restroom = "restroom"
    rest_seats = "rest_seats"
    air_conditioning = "air_conditioning"
    heating = "heating"
    first_aid = "first_aid"
    aed = "aed"
    wifi = "wifi"
    lockers = "lockers"


class StationState(StrEnum):
    """Effective state, derived from events and the clock."""

    available = "available"
    degraded = "degraded"
    closed = "closed"
    silent = "silent"


class Station(BaseModel):
    """A station as registered. Location is always WGS84 here; importers convert GCJ-02/BD-09."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    station_id: str = Field(pattern=STATION_ID_PATTERN, examples=["CY-0001"])
    name: str = Field(min_length=1, max_length=200)
    kind: StationKind
    district: str = Field(min_length=1, max_length=100)
    subdistrict: str | None = Field(None, max_length=100)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="WGS84 latitude")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="WGS84 longitude")
    capacity: int = Field(ge=1, le=10_000, description="Seats")
    amenities: tuple[Amenity, ...] = ()
    opening_hours: str | None = Field(
        None, max_length=200, description="OSM opening_hours syntax, e.g. 'Mo-Su 08:00-20:00'"
    )
    operator: str | None = Field(None, max_length=200)

    @field_validator("lat", "lon", "capacity", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        # JSON true is not a number; pydantic would read it as 1.
        if isinstance(value, bool):
            raise ValueError("must be a number, not true or false")
        return value

    stops: tuple[MobileStop, ...] = Field(
        (),
        max_length=MAX_STOPS,
        description="A mobile unit's tour: where it serves and when (lat/lon above: its base)",
    )

    @field_validator("opening_hours")
    @classmethod
    def _hours_parse(cls, value: str | None) -> str | None:
        """The clock applies the hours, so they must be readable (OpeningHoursError says
        where they are not)."""
        if value is not None:
            parse_opening_hours(value)
        return value

    @field_validator("stops")
    @classmethod
    def _stops_in_order(cls, value: tuple[MobileStop, ...]) -> tuple[MobileStop, ...]:
        return check_stops(value)

    @model_validator(mode="after")
    def _only_mobile_units_tour(self) -> Station:
        if self.stops and self.kind is not StationKind.mobile_unit:
            raise ValueError("only a station of kind mobile_unit has stops")
        return self

    @property
    def mobile(self) -> bool:
        return self.kind is StationKind.mobile_unit
