"""The small static map of a printed report: zone outlines as inline SVG paths, so the page
needs no script, no tiles and no network."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from services.reports.gap_document import ZoneRow

MAP_WIDTH_PX = 640.0
MAP_MARGIN_PX = 12.0
# Fill by the share of a zone's demand left uncovered: light (little) to dark (most).
SHARE_COLOURS = ("#fde725", "#5ec962", "#21918c", "#3b528b", "#440154")


@dataclass(frozen=True)
class ZoneShape:
    rank: int
    path: str
    fill: str
    label_x: float
    label_y: float


@dataclass(frozen=True)
class ZoneMap:
    width: float
    height: float
    shapes: list[ZoneShape]


def _rings(geometry: BaseGeometry) -> list[list[tuple[float, float]]]:
    polygons = getattr(geometry, "geoms", [geometry])
    return [list(p.exterior.coords) for p in polygons]


def share_colour(uncovered: float, demand: float) -> str:
    share = uncovered / demand if demand > 0 else 0.0
    step = min(len(SHARE_COLOURS) - 1, int(share * len(SHARE_COLOURS)))
    return SHARE_COLOURS[step]


def zone_map(rows: Sequence[ZoneRow]) -> ZoneMap | None:
    """Zones projected equirectangularly around their mean latitude (fine at city scale)."""
    drawn = [(row, shape(row.geometry)) for row in rows if row.geometry]
    if not drawn:
        return None
    minx = min(g.bounds[0] for _, g in drawn)
    miny = min(g.bounds[1] for _, g in drawn)
    maxx = max(g.bounds[2] for _, g in drawn)
    maxy = max(g.bounds[3] for _, g in drawn)
    squeeze = math.cos(math.radians((miny + maxy) / 2))
    span_x = max((maxx - minx) * squeeze, 1e-9)
    span_y = max(maxy - miny, 1e-9)
    scale = (MAP_WIDTH_PX - 2 * MAP_MARGIN_PX) / span_x
    height = span_y * scale + 2 * MAP_MARGIN_PX

    def point(lon: float, lat: float) -> tuple[float, float]:
        return (
            MAP_MARGIN_PX + (lon - minx) * squeeze * scale,
            MAP_MARGIN_PX + (maxy - lat) * scale,
        )

    shapes = []
    for row, geometry in drawn:
        parts = []
        for ring in _rings(geometry):
            xy = [point(lon, lat) for lon, lat, *_ in ring]
            parts.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in xy) + " Z")
        centre = geometry.representative_point()
        label_x, label_y = point(centre.x, centre.y)
        shapes.append(
            ZoneShape(
                rank=row.rank,
                path=" ".join(parts),
                fill=share_colour(row.gap.uncovered_demand_workers, row.gap.demand_workers),
                label_x=round(label_x, 1),
                label_y=round(label_y, 1),
            )
        )
    return ZoneMap(width=MAP_WIDTH_PX, height=round(height, 1), shapes=shapes)
