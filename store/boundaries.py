"""District and subdistrict outlines: stored as MultiPolygons, one table per level."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import shapely
from shapely.geometry import Point, mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Select, and_, delete, func, insert, select
from sqlalchemy.orm import Session

from schemas.geography import Boundary, BoundaryLevel
from store.spatial import intersecting, multipolygon, on_postgis, pg_point
from store.tables import DistrictRow, SubdistrictRow

LEVELS = (BoundaryLevel.district, BoundaryLevel.subdistrict)


def _listed(value: Any) -> Any:
    """GeoJSON coordinates as lists, as JSON gives them (shapely's `mapping` has tuples)."""
    if isinstance(value, tuple | list):
        return [_listed(item) for item in value]
    return value


def geojson(geometry: BaseGeometry) -> dict[str, Any]:
    data = mapping(geometry)
    return {"type": data["type"], "coordinates": _listed(data["coordinates"])}


class BoundaryRepository:
    """Outlines in import order. `containing` and `outline` answer with PostGIS or shapely."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def replace(self, boundaries: Iterable[Boundary]) -> int:
        """Replace every outline of both levels; returns the number stored."""
        chosen = list(boundaries)
        return sum(
            self.replace_level(level, [b for b in chosen if b.level is level]) for level in LEVELS
        )

    def replace_level(self, level: BoundaryLevel, boundaries: Iterable[Boundary]) -> int:
        """Replace the outlines of one level, keeping the other; order is kept."""
        level = BoundaryLevel(level)
        table = outline_table(level)
        rows: list[dict[str, Any]] = []
        for b in boundaries:
            if b.level is not level:
                raise ValueError(f"{b.name} is a {b.level.value}, not a {level.value}")
            row: dict[str, Any] = {"name": b.name, "geom": multipolygon(shape(b.geometry))}
            if level is BoundaryLevel.subdistrict:
                row["district"] = b.parent
            rows.append(row)
        self._session.execute(delete(table))
        if rows:
            self._session.execute(insert(table), rows)
        return len(rows)

    def list(self, *, level: BoundaryLevel | None = None) -> list[Boundary]:
        """Districts first, then subdistricts, each in import order; geometry as GeoJSON."""
        found: list[Boundary] = []
        for each in LEVELS if level is None else (BoundaryLevel(level),):
            table = outline_table(each)
            parent = SubdistrictRow.district if each is BoundaryLevel.subdistrict else None
            columns = [table.name, table.geom] + ([parent] if parent is not None else [])
            for row in self._session.execute(select(*columns).order_by(table.id)):
                found.append(
                    Boundary(
                        name=row[0],
                        level=each,
                        parent=row[2] if parent is not None else None,
                        geometry=geojson(row[1]),
                    )
                )
        return found

    def containing(self, lat: float, lon: float, *, level: BoundaryLevel) -> list[str]:
        """Names of the outlines of `level` that hold the point (its edge counts), in order."""
        table = outline_table(BoundaryLevel(level))
        if on_postgis(self._session):
            stmt = (
                select(table.name)
                .where(func.ST_Intersects(table.geom, pg_point(lat, lon)))
                .order_by(table.id)
            )
            return list(self._session.scalars(stmt))
        rows = self._session.execute(select(table.name, table.geom).order_by(table.id)).all()
        if not rows:
            return []
        hits = intersecting(Point(lon, lat), [geom for _, geom in rows])
        return [name for (name, _), hit in zip(rows, hits, strict=True) if hit]

    def outline(self, name: str, *, level: BoundaryLevel) -> BaseGeometry | None:
        """The union of the outlines of `level` named `name` (a subdistrict may be given as
        "district/name"), or None when there is none."""
        geoms = list(self._session.scalars(self.matching(name, level=level, column="geom")))
        return shapely.union_all(geoms) if geoms else None

    def matching(self, name: str, *, level: BoundaryLevel, column: str = "id") -> Select[Any]:
        """A select of `column` from the outlines `name` names, for use as a subquery."""
        table = outline_table(BoundaryLevel(level))
        stmt = select(getattr(table, column))
        district, _, short = name.rpartition("/")
        if table is SubdistrictRow and district:
            return stmt.where(and_(SubdistrictRow.district == district, table.name == short))
        return stmt.where(table.name == name)


def outline_table(level: BoundaryLevel) -> type[DistrictRow] | type[SubdistrictRow]:
    return DistrictRow if level is BoundaryLevel.district else SubdistrictRow
