"""Coverage history: a compact time series per district and subdistrict (one point per
5 minutes, hourly for older data), as the API serves it for trend charts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from schemas.stations import StationState


class HistoryRange(StrEnum):
    day = "24h"
    week = "7d"
    month = "30d"


class HistoryPoint(BaseModel):
    at: datetime = Field(description="Start of the point's interval")
    coverage_pct: float = Field(description="Share of expected workers an open station reaches")
    demand_workers: float
    uncovered_demand_workers: float
    stations_by_state: dict[StationState, float] = Field(
        description="Stations per state (an average over the interval for older points)"
    )
    open_alerts: float


class History(BaseModel):
    district: str
    subdistrict: str | None = Field(description="None: the whole district")
    range: HistoryRange
    interval_seconds: int = Field(description="Time between points")
    points: list[HistoryPoint]
