"""Messages between the stages of the distributed runtime (values on the internal topics)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.events import EVENT_ADAPTER, Event
from schemas.state import CoverageDelta


class Tick(BaseModel):
    """On the clock topic: evaluate silence and grace periods at `at`."""

    model_config = ConfigDict(frozen=True)

    at: datetime


class DemandReplaced(BaseModel):
    """On the clock topic, one per partition (key `DEMAND_KEY`): the demand layer in the store
    was replaced at `at`; each partition's owner loads it and rebuilds access on it."""

    model_config = ConfigDict(frozen=True)

    at: datetime


class TimedDelta(BaseModel):
    """A coverage delta and the instant the station stage produced it."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    delta: CoverageDelta


class ZoneMessage(BaseModel):
    """On the coverage-delta topic: one zone's deltas from a station batch, in order (one
    message per zone per batch, not per delta); a tick marker from one station partition (a
    zone partition ticks once every station partition has passed that time); or word that the
    demand layer was replaced (the zone partition rejudges its zones on it)."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    deltas: list[TimedDelta] = []
    tick_from: int | None = None
    demand_replaced: bool = False


class ZoneSummary(BaseModel):
    """On the compacted zone-coverage topic: one zone's coverage, as the reports sum it."""

    model_config = ConfigDict(frozen=True)

    zone: str
    district: str | None
    cells: int
    cells_covered: int
    demand_workers: float
    demand_covered_workers: float
    uncovered_demand_workers: float
    uncovered_cells: tuple[str, ...]
    stations_down: tuple[str, ...]


class WireError(ValueError):
    """A message that cannot be processed; the text is the dead-letter reason."""


def read_event(raw: bytes | None) -> Event:
    """An event from its bytes on an event topic, or WireError saying what is wrong. The
    future-time check is the API's, made when the event was accepted."""
    if raw is None:
        raise WireError("empty message")
    try:
        return EVENT_ADAPTER.validate_json(raw, strict=True, context={})
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":  # not JSON at all (or not UTF-8)
            raise WireError(f"malformed JSON: {errors[0]['msg']}") from exc
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        raise WireError(f"invalid event: {problems}") from exc


class StationRetired(BaseModel):
    """On the compacted station-state topic in place of a record: the station was retired,
    and whoever follows the topic forgets its record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retired_station_id: str


def retired_marker(station_id: str) -> bytes:
    return StationRetired(retired_station_id=station_id).model_dump_json().encode()
