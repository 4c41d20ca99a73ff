"""Mobile units (the riders' health-check bus, a service van): where they stop and when, and a
point a check-in can report when the unit went somewhere else."""

from __future__ import annotations

import itertools

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

MAX_STOPS = 500  # a tour of a few months, a few stops a day


class GeoPoint(BaseModel):
    """A WGS84 position."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)


class MobileStop(BaseModel):
    """One stop of a tour: the unit serves from here between start and end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, max_length=200)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="WGS84 latitude")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="WGS84 longitude")
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> MobileStop:
        if self.end <= self.start:
            raise ValueError("a stop must end after it starts")
        return self


def check_stops(stops: tuple[MobileStop, ...]) -> tuple[MobileStop, ...]:
    """Stops in time order, none overlapping the next (a unit is in one place at a time)."""
    ordered = tuple(sorted(stops, key=lambda s: s.start))
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise ValueError(
                f"stops overlap: one ends {before.end.isoformat()}, "
                f"the next starts {after.start.isoformat()}"
            )
    return ordered


def stop_at(stops: tuple[MobileStop, ...], instant: AwareDatetime) -> MobileStop | None:
    """The stop the unit is at, at an instant (stops are in time order)."""
    for stop in stops:
        if stop.start <= instant < stop.end:
            return stop
        if stop.start > instant:
            return None
    return None


def next_stops(
    stops: tuple[MobileStop, ...], instant: AwareDatetime, limit: int
) -> tuple[MobileStop, ...]:
    """The stops still to come after an instant (the current one excluded)."""
    return tuple(s for s in stops if s.start > instant)[:limit]


class StopGainView(BaseModel):
    stop: MobileStop
    uncovered_demand_workers: float = Field(
        description="Demand this stop reaches that no other working station covers now"
    )
    cells: int


class TourView(BaseModel):
    """A mobile unit's tour as the dashboard and planners read it."""

    station_id: str
    position: GeoPoint = Field(description="Where coverage counts the unit now")
    serving_now: bool
    current_stop: MobileStop | None
    next_stops: list[MobileStop]
    serving_cells: list[str] = Field(description="H3 cells it serves now")
    stops_by_gain: list[StopGainView] = Field(
        description="Every stop of the tour, the most uncovered demand first"
    )
