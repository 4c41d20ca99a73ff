"""Service statistics: visits, distinct workers, worker kinds and services used, per area and
per day or month, from daily rollups kept as visits are archived."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class StatsPeriod(StrEnum):
    day = "day"
    month = "month"


class StatsArea(StrEnum):
    district = "district"
    subdistrict = "subdistrict"
    station = "station"


class VisitStats(BaseModel):
    period: str = Field(description="YYYY-MM-DD or YYYY-MM, in the district's time zone")
    area: str = Field(description="District, subdistrict or station id")
    visits: int = Field(description="Visit events")
    people: int = Field(description="Workers served (visits x party size)")
    distinct_workers: int = Field(
        description="Distinct workers among visits that carried a worker_ref"
    )
    by_worker_kind: dict[str, int] = Field(description="Visits per worker kind")
    services_used: dict[str, int] = Field(description="Uses per service or amenity")


class VisitStatsList(BaseModel):
    district: str
    period: StatsPeriod
    by: StatsArea
    start: str
    end: str
    rows: list[VisitStats]
    total: VisitStats = Field(description="The whole district over the whole range")
