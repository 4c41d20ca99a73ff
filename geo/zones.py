"""Zones: the areas alerts and gap reports speak of. H3 resolution-7 parents by default;
subdistrict polygons when a union has loaded its boundaries, because "Jinsong subdistrict is
underserved" is something an officer can act on and a hexagon id is not."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import h3
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from schemas.geography import Boundary, BoundaryLevel


class ZoneScheme(Protocol):
    def zone_of(self, cell: str) -> str: ...


@dataclass(frozen=True)
class H3Zones:
    resolution: int = 7

    def zone_of(self, cell: str) -> str:
        return h3.cell_to_parent(cell, self.resolution)


@dataclass(eq=False)
class BoundaryZones:
    """A cell belongs to the polygon holding its centre; a cell outside every polygon falls
    back to its H3 parent, so no demand is ever left without a zone."""

    names: list[str]
    polygons: list[BaseGeometry]
    fallback: H3Zones
    _tree: shapely.STRtree = field(init=False)
    _cache: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for polygon in self.polygons:
            shapely.prepare(polygon)
        self._tree = shapely.STRtree(self.polygons)

    @classmethod
    def from_boundaries(
        cls,
        boundaries: Iterable[Boundary],
        fallback: H3Zones,
        level: BoundaryLevel = BoundaryLevel.subdistrict,
    ) -> BoundaryZones:
        chosen = sorted(
            (b for b in boundaries if b.level is level),
            key=lambda b: (b.parent or "", b.name),
        )
        return cls(
            names=[zone_name(b) for b in chosen],
            polygons=[shape(b.geometry) for b in chosen],
            fallback=fallback,
        )

    def zone_of(self, cell: str) -> str:
        found = self._cache.get(cell)
        if found is None:
            lat, lon = h3.cell_to_latlng(cell)
            hits = self._tree.query(shapely.Point(lon, lat), predicate="within")
            # Shared borders can hold a centre twice: the first name in sort order wins.
            found = self.names[min(hits)] if len(hits) else self.fallback.zone_of(cell)
            self._cache[cell] = found
        return found


def zone_name(boundary: Boundary) -> str:
    return f"{boundary.parent}/{boundary.name}" if boundary.parent else boundary.name
