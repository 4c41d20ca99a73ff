"""Coverage cells as last saved by the runtime, and the spatial queries of the gap report.

The area filters are the only part that differs by backend (see store.spatial); the zone
totals are summed by the same Python code for both, so both give the same report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import h3
import numpy as np
from shapely.geometry import Point, Polygon
from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from schemas.api import CellStatus
from schemas.geography import AreaGap, BoundaryLevel, CoverageCell
from store.boundaries import BoundaryRepository, outline_table
from store.database import executemany_direct, upsert
from store.spatial import (
    degree_box,
    geodesic_m,
    intersecting,
    on_postgis,
    pg_geography,
    pg_point,
)
from store.tables import CoverageCellRow

WRITE_CHUNK = 5000
EDGE_MARGIN = 2.0  # cell edges from its centre, at most, in units of the average edge length

_FIELDS = (
    CoverageCellRow.cell,
    CoverageCellRow.district,
    CoverageCellRow.subdistrict,
    CoverageCellRow.zone,
    CoverageCellRow.demand_workers,
    CoverageCellRow.coverage_count,
    CoverageCellRow.access_score,
    CoverageCellRow.status,
    CoverageCellRow.updated_at,
)


def _row(cell: CoverageCell) -> dict[str, Any]:
    lat, lon = h3.cell_to_latlng(cell.cell)
    outline = Polygon([(x, y) for y, x in h3.cell_to_boundary(cell.cell)])
    return {
        **cell.model_dump(),
        "status": cell.status.value,
        "lon": lon,
        "lat": lat,
        "geom": outline,
        "centre": Point(lon, lat),
    }


_Cell = TypeVar("_Cell")

_LIVE = ("demand_workers", "coverage_count", "access_score", "status", "updated_at")
"""The columns that change as coverage does; the rest are fixed by the demand layer."""

_KEYS = tuple(column.key for column in _FIELDS)


class CellValues(NamedTuple):
    """A snapshot cell's live values (`_LIVE`), all `update` writes: the runtime saves
    thousands a second, and a plain tuple costs far less to build than a `CoverageCell`."""

    cell: str
    demand_workers: float
    coverage_count: int
    access_score: float
    status: CellStatus
    updated_at: datetime


def _cell(values: Sequence[Any]) -> CoverageCell:
    """A stored row back as a model."""
    return CoverageCell(**dict(zip(_KEYS, values, strict=True)))


class CoverageCellRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    # writing -------------------------------------------------------------------------------

    def save(self, cells: Iterable[CoverageCell]) -> int:
        """Insert or replace these cells (the ones whose coverage changed); returns how many."""
        written = 0
        for chunk in _chunked(cells):
            written += upsert(
                self._session, CoverageCellRow.__table__, [_row(c) for c in chunk], key=["cell"]
            )
        return written

    def update(self, cells: Iterable[CoverageCell | CellValues]) -> int:
        """Set the live values (demand, count, access, status, time) of cells already in the
        snapshot, leaving their fixed columns (district, zone, outline, centre) alone: the
        write the runtime makes as coverage changes. Returns how many were given."""
        table = CoverageCellRow.__table__
        stmt = (
            update(table)
            .where(table.c.cell == bindparam("b_cell"))
            .values({name: bindparam(f"b_{name}") for name in _LIVE})
        )
        names = ["b_cell", *(f"b_{name}" for name in _LIVE)]
        types = {f"b_{name}": table.c[name].type for name in _LIVE}
        written = 0
        for chunk in _chunked(cells):
            rows = [
                (
                    c.cell,
                    c.demand_workers,
                    c.coverage_count,
                    c.access_score,
                    c.status.value,
                    c.updated_at,
                )
                for c in chunk
            ]
            executemany_direct(self._session, stmt, names, types, rows)
            written += len(chunk)
        return written

    def replace(self, cells: Iterable[CoverageCell]) -> int:
        """Replace the whole snapshot (start-up, a new demand layer)."""
        self._session.execute(delete(CoverageCellRow))
        written = 0
        for chunk in _chunked(cells):
            self._session.execute(insert(CoverageCellRow.__table__), [_row(c) for c in chunk])
            written += len(chunk)
        return written

    # reading -------------------------------------------------------------------------------

    def load(self) -> list[CoverageCell]:
        stmt = select(*_FIELDS).order_by(CoverageCellRow.cell)
        return [_cell(row) for row in self._session.execute(stmt)]

    def count(self, *, status: CellStatus | None = None) -> int:
        stmt = select(func.count()).select_from(CoverageCellRow)
        if status is not None:
            stmt = stmt.where(CoverageCellRow.status == CellStatus(status).value)
        return self._session.scalar(stmt) or 0

    def within_boundary(self, name: str, *, level: BoundaryLevel) -> list[CoverageCell]:
        """Cells whose hexagon intersects the outline(s) `name` names (ST_Intersects)."""
        if on_postgis(self._session):
            # A join (not EXISTS) so that the planner probes the GiST index of the cells once
            # per outline; outlines sharing a name can return a cell twice.
            outlines = BoundaryRepository(self._session).matching(name, level=level).subquery()
            outline = outline_table(BoundaryLevel(level))
            stmt = (
                select(*_FIELDS)
                .join(outline, func.ST_Intersects(CoverageCellRow.geom, outline.geom))
                .where(outline.id.in_(select(outlines.c.id)))
                .order_by(CoverageCellRow.cell)
            )
            found = [_cell(row) for row in self._session.execute(stmt)]
            return [c for i, c in enumerate(found) if i == 0 or found[i - 1].cell != c.cell]

        area = BoundaryRepository(self._session).outline(name, level=level)
        if area is None:
            return []
        margin_lat, margin_lon = self._cell_margin_deg(area.bounds[3])
        min_lon, min_lat, max_lon, max_lat = area.bounds
        stmt = (
            select(*_FIELDS, CoverageCellRow.geom)
            .where(
                and_(
                    CoverageCellRow.lat.between(min_lat - margin_lat, max_lat + margin_lat),
                    CoverageCellRow.lon.between(min_lon - margin_lon, max_lon + margin_lon),
                )
            )
            .order_by(CoverageCellRow.cell)
        )
        rows = self._session.execute(stmt).all()
        if not rows:
            return []
        hits = intersecting(area, np.array([row[-1] for row in rows], dtype=object))
        return [_cell(row[:-1]) for row, hit in zip(rows, hits, strict=True) if hit]

    def near(self, lat: float, lon: float, radius_m: float) -> list[CoverageCell]:
        """Cells whose centre is within `radius_m` of the point, on the ellipsoid
        (ST_DWithin on geography)."""
        if on_postgis(self._session):
            stmt = (
                select(*_FIELDS)
                .where(
                    func.ST_DWithin(
                        pg_geography(CoverageCellRow.centre),
                        pg_geography(pg_point(lat, lon)),
                        radius_m,
                    )
                )
                .order_by(CoverageCellRow.cell)
            )
            return [_cell(row) for row in self._session.execute(stmt)]

        min_lon, min_lat, max_lon, max_lat = degree_box(lat, lon, radius_m)
        stmt = (
            select(*_FIELDS, CoverageCellRow.lat, CoverageCellRow.lon)
            .where(
                and_(
                    CoverageCellRow.lat.between(min_lat, max_lat),
                    CoverageCellRow.lon.between(min_lon, max_lon),
                )
            )
            .order_by(CoverageCellRow.cell)
        )
        rows = self._session.execute(stmt).all()
        if not rows:
            return []
        distances = geodesic_m(lat, lon, [r[-2] for r in rows], [r[-1] for r in rows])
        return [_cell(r[:-2]) for r, d in zip(rows, distances, strict=True) if d <= radius_m]

    def gaps_within_boundary(self, name: str, *, level: BoundaryLevel) -> list[AreaGap]:
        return area_gaps(self.within_boundary(name, level=level))

    def gaps_near(self, lat: float, lon: float, radius_m: float) -> list[AreaGap]:
        return area_gaps(self.near(lat, lon, radius_m))

    def _cell_margin_deg(self, max_lat: float) -> tuple[float, float]:
        """How far (degrees lat, lon) a cell's hexagon reaches beyond its centre, at most."""
        sample = self._session.scalar(select(CoverageCellRow.cell).limit(1))
        if sample is None:
            return 0.0, 0.0
        edge_m = h3.average_hexagon_edge_length(h3.get_resolution(sample), unit="m")
        box = degree_box(max_lat, 0.0, EDGE_MARGIN * edge_m)
        return box[3] - max_lat, box[2]


def area_gaps(cells: Iterable[CoverageCell]) -> list[AreaGap]:
    """Zones with uncovered demand among `cells`, most uncovered demand first (as the live
    gap report orders them)."""
    demand: dict[str, float] = defaultdict(float)
    missing: dict[str, float] = defaultdict(float)
    uncovered: dict[str, list[str]] = defaultdict(list)
    districts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for cell in cells:
        demand[cell.zone] += cell.demand_workers
        districts[cell.zone][cell.district] += 1
        if cell.status is CellStatus.underserved:
            missing[cell.zone] += cell.demand_workers
            uncovered[cell.zone].append(cell.cell)
    gaps = [
        AreaGap(
            zone=zone,
            district=max(sorted(districts[zone]), key=lambda d: districts[zone][d]),
            demand_workers=round(demand[zone], 3),
            uncovered_demand_workers=round(missing[zone], 3),
            uncovered_cells=tuple(sorted(uncovered[zone])),
        )
        for zone in demand
        if round(missing[zone], 3) > 0
    ]
    gaps.sort(key=lambda g: (-g.uncovered_demand_workers, g.zone))
    return gaps


def _chunked(cells: Iterable[_Cell]) -> Iterable[list[_Cell]]:
    chunk: list[_Cell] = []
    for cell in cells:
        chunk.append(cell)
        if len(chunk) == WRITE_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
