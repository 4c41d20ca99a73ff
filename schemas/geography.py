"""Areas and the demand layer: what a union loads about its territory."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.api import CellStatus


class DemandCell(BaseModel):
    """Expected outdoor workers in one grid cell (H3 index at the grid resolution)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cell: str = Field(pattern=r"^[0-9a-f]{15}$")
    demand_workers: float = Field(ge=0, allow_inf_nan=False)
    district: str
    subdistrict: str | None = None


class BoundaryLevel(StrEnum):
    district = "district"
    subdistrict = "subdistrict"


class Boundary(BaseModel):
    """A district or subdistrict outline, as a GeoJSON geometry in WGS84."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    level: BoundaryLevel
    parent: str | None = Field(None, description="The district of a subdistrict")
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon")


class CoverageCell(BaseModel):
    """One demand cell's coverage as last saved: what planners query and map."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cell: str = Field(pattern=r"^[0-9a-f]{15}$")
    district: str
    subdistrict: str | None = None
    zone: str
    demand_workers: float = Field(ge=0, allow_inf_nan=False)
    coverage_count: int = Field(ge=0, description="Available and degraded stations in reach")
    access_score: float = Field(ge=0, allow_inf_nan=False, description="2SFCA seats per worker")
    status: CellStatus
    updated_at: AwareDatetime


class AreaGap(BaseModel):
    """A zone's demand and uncovered demand within an area a gap report asked about."""

    model_config = ConfigDict(frozen=True)

    zone: str
    district: str
    demand_workers: float
    uncovered_demand_workers: float
    uncovered_cells: tuple[str, ...]
