"""One geometry column type for both stores.

On PostgreSQL the column is a real PostGIS `geometry(<type>, 4326)` through GeoAlchemy2, so
planners, QGIS and GiST indexes see it. On SQLite (the embedded default, no SpatiaLite to
install) the same column holds plain WKB and spatial filtering happens in Python with shapely,
inside the repositories. Either way Python code reads and writes shapely geometries.
"""

from __future__ import annotations

from typing import Any

import shapely
from geoalchemy2 import Geometry, WKBElement
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Dialect, LargeBinary, TypeDecorator
from sqlalchemy.types import TypeEngine

WGS84_SRID = 4326


class GeometryColumn(TypeDecorator[BaseGeometry]):
    """A WGS84 geometry: PostGIS `geometry` on PostgreSQL, WKB in a BLOB elsewhere."""

    impl = LargeBinary
    cache_ok = True
    # Read by GeoAlchemy2's DDL hooks: no implicit index, no AddGeometryColumn management.
    spatial_index = False
    use_typmod = None

    def __init__(self, geometry_type: str = "GEOMETRY") -> None:
        super().__init__()
        self.geometry_type = geometry_type.upper()

    def load_dialect_impl(self, dialect: Dialect | None) -> TypeEngine[Any]:
        # GeoAlchemy2's DDL hooks ask with no dialect: answer "not spatial" so that they leave
        # these columns alone (the tables declare their own GiST indexes).
        if dialect is not None and dialect.name == "postgresql":
            # Indexes are declared on the tables (GiST), not made implicitly here.
            spatial = Geometry(self.geometry_type, srid=WGS84_SRID, spatial_index=False)
            return dialect.type_descriptor(spatial)
        return LargeBinary() if dialect is None else dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: BaseGeometry | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, BaseGeometry):
            raise TypeError(f"expected a shapely geometry, got {type(value).__name__}")
        if dialect.name == "postgresql":
            return from_shape(value, srid=WGS84_SRID)
        return shapely.to_wkb(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> BaseGeometry | None:
        if value is None:
            return None
        if isinstance(value, WKBElement):
            return to_shape(value)
        return shapely.from_wkb(value)
