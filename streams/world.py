"""What both runtimes build from the store and the settings before processing anything: the
grid with its zones, the demand layer, the station registry and the catchment model."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from geo.catchment import Catchments, CircleCatchments
from geo.demand import DemandLayer
from geo.grid import Grid
from geo.network import NetworkCatchments, StreetNetwork
from geo.zones import BoundaryZones, H3Zones, ZoneScheme
from schemas.geography import Boundary, BoundaryLevel
from store.unit_of_work import Store
from waystation.settings import Settings

log = logging.getLogger(__name__)


def build_grid(settings: Settings, subdistricts: list[Boundary]) -> Grid:
    """Subdistricts become the alert zones when loaded, unless settings say H3."""
    fallback = H3Zones(settings.zone_resolution)
    zones: ZoneScheme = fallback
    if subdistricts and settings.zone_scheme != "h3":
        zones = BoundaryZones.from_boundaries(subdistricts, fallback)
    elif settings.zone_scheme == "subdistrict":
        log.warning("zone_scheme is subdistrict but none are loaded: using H3 zones")
    return Grid(settings.grid_resolution, settings.zone_resolution, zones)


def build_catchments(settings: Settings, grid: Grid) -> Catchments:
    if settings.catchment_model == "circle":
        return CircleCatchments(grid, settings.catchment_radius_m)
    if settings.street_network_file is None:
        raise ValueError("catchment_model=network needs WAYSTATION_STREET_NETWORK_FILE")
    document = json.loads(settings.street_network_file.read_text(encoding="utf-8"))
    return NetworkCatchments(
        grid,
        StreetNetwork.from_geojson(document),
        speed_kmh=settings.travel_speed_kmh,
        minutes=settings.catchment_minutes,
        max_snap_m=settings.network_max_snap_m,
    )


@dataclass(frozen=True)
class World:
    grid: Grid
    demand: DemandLayer
    catchments: Catchments

    @classmethod
    def load(cls, store: Store, settings: Settings) -> World:
        with store.transaction() as tx:
            grid = build_grid(settings, tx.boundaries.list(level=BoundaryLevel.subdistrict))
            demand = DemandLayer.build(grid, tx.demand.load())
        return cls(grid=grid, demand=demand, catchments=build_catchments(settings, grid))
