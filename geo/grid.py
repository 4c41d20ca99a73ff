"""The H3 grid that coverage is counted on, and the coarser zones alerts are raised for."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import h3

from geo.zones import H3Zones, ZoneScheme


@dataclass(frozen=True)
class Grid:
    """Cells at `resolution`; zones by `zones` when given, else H3 parents at
    `zone_resolution`."""

    resolution: int = 9
    zone_resolution: int = 7
    zones: ZoneScheme | None = None
    _split: dict[frozenset[str], dict[str, tuple[str, ...]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

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

    def by_zone(self, cells: frozenset[str]) -> Mapping[str, tuple[str, ...]]:
        """`cells` split by zone, each zone's cells sorted. Remembered per set: a station's
        catchment is split again every time its state changes, and it is the same set (the
        catchments are cached) every time. Do not change what it returns."""
        split = self._split.get(cells)
        if split is None:
            grouped: dict[str, list[str]] = defaultdict(list)
            for cell in cells:
                grouped[self.zone_of(cell)].append(cell)
            split = {zone: tuple(sorted(members)) for zone, members in grouped.items()}
            self._split[cells] = split
        return split

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
