"""The H3 grid that coverage is counted on, and the coarser zones alerts are raised for."""

from __future__ import annotations

from dataclasses import dataclass

import h3

from geo.zones import H3Zones, ZoneScheme


@dataclass(frozen=True)
class Grid:
    """Cells at `resolution`; zones by `zones` when given, else H3 parents at
    `zone_resolution`."""

    resolution: int = 9
    zone_resolution: int = 7
    zones: ZoneScheme | None = None

    def __post_init__(self) -> None:
        if self.zone_resolution > self.resolution:
            raise ValueError("zone_resolution must be coarser than (or equal to) resolution")
        if self.zones is None:
            object.__setattr__(self, "zones", H3Zones(self.zone_resolution))

    def cell_of(self, lat: float, lon: float) -> str:
        return h3.latlng_to_cell(lat, lon, self.resolution)

    def zone_of(self, cell: str) -> str:
        assert self.zones is not None
        return self.zones.zone_of(cell)

    @staticmethod
    def centre(cell: str) -> tuple[float, float]:
        """(lat, lon) of a cell's centre."""
        return h3.cell_to_latlng(cell)

    @staticmethod
    def outline_lonlat(cell: str) -> list[list[float]]:
        """Closed GeoJSON ring ([lon, lat] pairs) of a cell or zone."""
        ring = [[lon, lat] for lat, lon in h3.cell_to_boundary(cell)]
        ring.append(ring[0])
        return ring
