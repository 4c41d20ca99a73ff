"""The H3 grid that coverage is counted on, and the coarser zones alerts are raised for."""

from __future__ import annotations

from dataclasses import dataclass

import h3


@dataclass(frozen=True)
class Grid:
    resolution: int = 9
    zone_resolution: int = 7

    def __post_init__(self) -> None:
        if self.zone_resolution > self.resolution:
            raise ValueError("zone_resolution must be coarser than (or equal to) resolution")

    def cell_of(self, lat: float, lon: float) -> str:
        return h3.latlng_to_cell(lat, lon, self.resolution)

    def zone_of(self, cell: str) -> str:
        return h3.cell_to_parent(cell, self.zone_resolution)

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
