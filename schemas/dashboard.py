"""What the dashboard reads: who the key is, the map in one compact snapshot, the KPIs, a
station's recent events and the district outlines. The snapshot is columnar (one array per
field) because a city has 20,000 stations and 200,000 cells."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.alert_actions import AlertHandling
from schemas.alerts import Alert, AlertKind
from schemas.auth import Role
from schemas.stations import StationState


class Whoami(BaseModel):
    """The key's role and scope, and what the page needs to draw the map."""

    role: Role
    label: str
    districts: list[str] = Field(description="Districts this key may read (known ones only)")
    all_districts: bool = Field(description="The key is not limited to named districts")
    timezone: str = Field(description="IANA time zone the page shows times in")
    basemap_tile_url: str | None
    basemap_attribution: str
    sample_data: bool = Field(
        False,
        description="The store holds the generated sample city: its stations, demand and "
        "events are made up (and simulated while `waystation demo` runs)",
    )


class Kpis(BaseModel):
    district: str | None
    stations_total: int
    stations_by_state: dict[StationState, int]
    demand_workers: float
    demand_covered_workers: float
    demand_covered_pct: float
    open_alerts_by_kind: dict[AlertKind, int]
    visits_today: int
    visits_today_by_subdistrict: dict[str, int] = Field(
        description="Visits today per subdistrict (stations without one under the empty name)"
    )


class StationColumns(BaseModel):
    """Stations, one array per field, all the same length."""

    id: list[str]
    name: list[str]
    kind: list[str]
    lat: list[float]
    lon: list[float]
    state: list[int] = Field(description="Index into `states`")
    subdistrict: list[int] = Field(description="Index into `subdistricts`, -1 for none")


class CellColumns(BaseModel):
    """Cells with demand, one array per field, all the same length."""

    id: list[str] = Field(description="H3 cell index")
    lat: list[float] = Field(description="Centre latitude")
    lon: list[float] = Field(description="Centre longitude")
    demand: list[float] = Field(description="Expected workers")
    status: list[int] = Field(description="Index into `statuses`")
    access: list[float] = Field(description="2SFCA access score (seats per worker)")
    covered: list[int] = Field(description="1 when an open station reaches the cell")
    subdistrict: list[int] = Field(description="Index into `subdistricts`, -1 for none")


class MapSnapshot(BaseModel):
    """Everything the map shows, as of `seq`: live updates after `seq` apply on top."""

    district: str | None
    seq: int = Field(description="The last live update already included")
    generated_at: datetime
    states: list[StationState]
    statuses: list[str]
    subdistricts: list[str]
    stations: StationColumns
    cells: CellColumns
    underserved_zones: list[str] = Field(
        description="Underserved zones: 'district/subdistrict' names or H3 cells"
    )
    open_alerts: list[Alert]
    alert_handling: dict[str, AlertHandling] = Field(
        default_factory=dict, description="What people did about open alerts, by alert_id"
    )
    kpis: Kpis


class StationEvent(BaseModel):
    event_id: str
    type: str
    occurred_at: datetime
    status: str = Field(description="What processing made of it (applied, stale, late...)")
    payload: dict[str, Any]


class StationEvents(BaseModel):
    station_id: str
    events: list[StationEvent]


class BoundaryCollection(BaseModel):
    """A GeoJSON FeatureCollection of outlines; properties: name, level, parent."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]
