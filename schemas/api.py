"""Response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.alerts import Alert, AlertKind
from schemas.reasons import NEVER_HEARD_FROM, Reason
from schemas.stations import Station, StationState


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field; empty for the whole item")
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details: every error answer has this shape."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class EventResult(StrEnum):
    accepted = "accepted"
    late = "late"  # archived, but older than the station's latest report by more than allowed
    duplicate = "duplicate"
    rejected = "rejected"


class EventOutcome(BaseModel):
    index: int
    event_id: str | None = None
    result: EventResult
    status: int = Field(description="The HTTP status this item would get on its own")
    errors: list[FieldError] = Field(default_factory=list)


class IngestResponse(BaseModel):
    accepted: int
    late: int = Field(
        0, description="Archived but too old to change the station's state (not applied)"
    )
    duplicates: int
    rejected: int
    results: list[EventOutcome]


class StationView(BaseModel):
    station: Station
    state: StationState
    state_since: datetime | None
    state_reason: str = Field(description="Why, in English")
    state_cause: Reason = Field(NEVER_HEARD_FROM, description="Why, as a code and values")
    last_heard_at: datetime | None


class StationList(BaseModel):
    total: int
    stations: list[StationView]


class CellStatus(StrEnum):
    covered = "covered"
    underserved = "underserved"  # demand that matters, and no working station or too little access
    uncovered = "uncovered"  # no station within reach, but too little demand to matter


class ZoneGap(BaseModel):
    zone: str
    district: str | None
    demand_workers: float
    uncovered_demand_workers: float
    uncovered_cells: list[str]
    stations_down: list[str] = Field(description="Stations whose state left these cells uncovered")
    alert_open: bool


class CoverageSummary(BaseModel):
    district: str | None
    cells: int
    cells_covered: int
    demand_workers: float
    demand_covered_workers: float
    demand_covered_pct: float
    stations_by_state: dict[StationState, int]
    underserved_zones: list[ZoneGap]


class CoverageResponse(BaseModel):
    """A GeoJSON FeatureCollection of cells, with the summary alongside."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]
    summary: CoverageSummary


class AlertList(BaseModel):
    total: int
    alerts: list[Alert]


class GapReport(BaseModel):
    district: str | None
    generated_at: datetime
    zones: list[ZoneGap]
    stations_by_state: dict[StationState, int] = Field(
        default_factory=dict, description="The district's stations by state, as of the report"
    )
    open_alerts_by_kind: dict[AlertKind, int] = Field(
        default_factory=dict, description="The district's open alerts, as of the report"
    )


class ImportProblem(BaseModel):
    row: int | str = Field(description="Index in the posted array, or the feature")
    field: str
    reason: str


class ImportResponse(BaseModel):
    imported: int
    rejected: int
    errors: list[ImportProblem]


class DemandReplaced(BaseModel):
    cells: int
    demand_workers: float


class Health(BaseModel):
    status: Literal["ok", "starting", "degraded", "lagging"]
    queue_depth: int
    lag_events: int = 0  # acknowledged, not yet applied
    lag_seconds: float = 0.0  # age of the oldest of those
    # None while the processor holds the live state too long to be read
    stations: int | None
    open_alerts: dict[AlertKind, int] | None


class FailedEvent(BaseModel):
    """An archived event that could not be applied, and why (as far as can be told now)."""

    event_id: str
    type: str
    station_id: str
    occurred_at: datetime
    received_at: datetime
    reason: str


class FailedEventList(BaseModel):
    total: int
    events: list[FailedEvent]


class FailedEventsCleared(BaseModel):
    cleared: int
    event_ids: list[str] = Field(description="Now `discarded`: kept for the record, never applied")
