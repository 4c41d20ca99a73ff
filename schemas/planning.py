"""Planning requests and answers: siting suggestions and what-if scenarios."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.geography import DemandCell


class Network(StrEnum):
    live = "live"  # only stations that count now (available, degraded weighted)
    full = "full"  # every registered station open


class Objective(StrEnum):
    coverage = "coverage"  # maximal covering: the most uncovered demand with k sites
    set_cover = "set_cover"  # the fewest sites that reach a target share of demand
    access = "access"  # the most demand-weighted 2SFCA access, capped at a target


class Method(StrEnum):
    heuristic = "heuristic"
    exact = "exact"


class CandidateSite(BaseModel):
    """A site a planner proposes (a shop or branch willing to host a station)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site_id: str | None = Field(None, max_length=100, description="Defaults to its position")
    name: str | None = Field(None, max_length=200)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    address: str | None = Field(
        None, max_length=500, description="Geocoded when lat/lon are absent"
    )


class SitingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    district: str | None = None
    k: int = Field(10, description="How many new stations (coverage and access objectives)")
    objective: Objective = Objective.coverage
    target_share: float = Field(
        0.9, gt=0, le=1, description="set_cover: share of the district's demand to reach"
    )
    network: Network = Network.live
    travel_mode: Literal["walk", "ebike"] | None = Field(
        None, description="How workers reach the new stations (default: the configured mode)"
    )
    seats: int = Field(8, ge=1, le=500, description="Seats a new station would have")
    candidates: list[CandidateSite] | None = Field(
        None, description="Sites to choose from; default: the centre of every uncovered cell"
    )
    crs: Literal["wgs84", "gcj02", "bd09"] = "wgs84"
    method: Method = Method.heuristic


class SitePick(BaseModel):
    rank: int
    site_id: str
    name: str | None
    lat: float
    lon: float
    added: float = Field(description="Demand (workers; access objective: access units) it adds")
    cumulative: float
    cumulative_demand_covered_pct: float = Field(
        description="Share of the district's demand covered with this and the sites before it"
    )
    catchment_cells: list[str]


class SitingAnswer(BaseModel):
    district: str | None
    objective: Objective
    network: Network
    method: Method
    generated_at: datetime
    candidates: int
    demand_workers: float
    demand_covered_before_workers: float
    demand_covered_after_workers: float
    reached_target: bool | None = None
    picks: list[SitePick]
    elapsed_ms: float


class NewSite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    site_id: str = Field(min_length=1, max_length=100)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    seats: int = Field(8, ge=1, le=500)


class ScenarioChanges(BaseModel):
    """What a planner wants to try. Applied in this order: demand, closures, seats, openings."""

    model_config = ConfigDict(extra="forbid")

    close: list[str] = Field(default_factory=list, description="Station ids to close")
    reopen: list[str] = Field(default_factory=list, description="Station ids to count as available")
    open_sites: list[NewSite] = Field(default_factory=list)
    seats: dict[str, int] = Field(default_factory=dict, description="Station id to new seats")
    demand_scale: float | None = Field(None, gt=0, le=100, description="Multiply every cell")
    demand: list[DemandCell] | None = Field(None, description="Replace the demand layer")
    network: Network = Network.live


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    district: str | None = None
    name: str | None = Field(None, max_length=200, description="Save under this name")
    changes: ScenarioChanges


class ZoneChange(BaseModel):
    zone: str
    district: str | None
    uncovered_before_workers: float
    uncovered_after_workers: float
    underserved_before: bool
    underserved_after: bool


class WhatIfDiff(BaseModel):
    district: str | None
    generated_at: datetime
    cells_gained: list[str] = Field(description="Demand cells covered only in the scenario")
    cells_lost: list[str] = Field(description="Demand cells covered now, not in the scenario")
    demand_gained_workers: float
    demand_lost_workers: float
    demand_workers_before: float
    demand_workers_after: float
    underserved_demand_before_workers: float = Field(description="Summed over the zones")
    underserved_demand_after_workers: float
    access_before: float = Field(
        description="Demand-weighted mean 2SFCA access (seats/worker) over the cells reached"
    )
    access_after: float
    zones: list[ZoneChange] = Field(description="Zones whose uncovered demand changed")
    zones_becoming_underserved: list[str]
    zones_no_longer_underserved: list[str]
    elapsed_ms: float
    scenario_id: int | None = Field(None, description="Set when the scenario was saved")


class SavedScenario(BaseModel):
    scenario_id: int
    name: str
    district: str | None
    changes: ScenarioChanges
    created_at: datetime
    created_by: str


class SavedScenarioList(BaseModel):
    scenarios: list[SavedScenario]
