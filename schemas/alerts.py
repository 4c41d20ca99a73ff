"""Alerts and their lifecycle records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.reasons import Reason


class AlertKind(StrEnum):
    zone_underserved = "zone_underserved"
    station_silent = "station_silent"
    station_degraded = "station_degraded"
    station_overloaded = "station_overloaded"


class AlertStatus(StrEnum):
    pending = "pending"  # condition holds, grace period not yet over: nobody is told
    open = "open"
    resolved = "resolved"


class AlertTransition(StrEnum):
    opened = "opened"
    updated = "updated"
    resolved = "resolved"


class AlertEvidence(BaseModel):
    """Why an alert is raised: enough for a union officer to act without digging."""

    model_config = ConfigDict(frozen=True)

    detail: str = Field("", description="`reason` in English")
    reason: Reason | None = Field(None, description="Why, as a code and values to word")
    cells: tuple[str, ...] = ()
    uncovered_demand_workers: float = 0.0
    stations: tuple[str, ...] = Field((), description="Stations whose state caused the condition")


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert_id: str
    kind: AlertKind
    subject: str = Field(description="Zone id (H3 cell) or station_id")
    district: str | None = None
    status: AlertStatus
    condition_since: datetime
    clear_since: datetime | None = None
    opened_at: datetime | None = None
    updated_at: datetime
    resolved_at: datetime | None = None
    evidence: AlertEvidence

    @property
    def key(self) -> str:
        return alert_key(self.kind, self.subject)


class AlertEvent(BaseModel):
    """A lifecycle step of an alert, as published to whoever listens."""

    model_config = ConfigDict(frozen=True)

    transition: AlertTransition
    alert: Alert


def alert_key(kind: AlertKind, subject: str) -> str:
    return f"{kind.value}:{subject}"
