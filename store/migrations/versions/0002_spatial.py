"""Spatial store: geometries on stations and alerts, district and subdistrict multipolygons
(moved out of `boundaries`), coverage cells, API keys, GiST indexes on PostgreSQL.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
from typing import Any

import h3
import sqlalchemy as sa
from alembic import op
from shapely.geometry import MultiPolygon, Point, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from store.geometry import GeometryColumn

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
GIST = {
    "stations": {"ix_stations_geom": "geom", "ix_stations_geog": "geography(geom)"},
    "districts": {"ix_districts_geom": "geom"},
    "subdistricts": {"ix_subdistricts_geom": "geom"},
    "coverage_cells": {
        "ix_coverage_cells_geom": "geom",
        "ix_coverage_cells_centre": "centre",
        "ix_coverage_cells_centre_geog": "geography(centre)",
    },
    "alerts": {"ix_alerts_geom": "geom"},
}


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _gist(table: str) -> None:
    if _postgres():
        for name, expression in GIST[table].items():
            op.execute(f"CREATE INDEX {name} ON {table} USING gist ({expression})")


def _multipolygon(geometry: BaseGeometry) -> MultiPolygon:
    return MultiPolygon([geometry]) if isinstance(geometry, Polygon) else geometry


def _outline_table(name: str) -> sa.Table:
    columns: list[Any] = [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
    ]
    if name == "subdistricts":
        columns.append(sa.Column("district", sa.String(100)))
    columns.append(sa.Column("geom", GeometryColumn("MULTIPOLYGON"), nullable=False))
    return op.create_table(name, *columns)


def upgrade() -> None:
    bind = op.get_bind()
    if _postgres():
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    op.add_column("stations", sa.Column("geom", GeometryColumn("POINT")))
    if _postgres():
        op.execute("UPDATE stations SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326)")
    else:
        stations = sa.table(
            "stations",
            sa.column("station_id", sa.String),
            sa.column("lon", sa.Float),
            sa.column("lat", sa.Float),
            sa.column("geom", GeometryColumn("POINT")),
        )
        points = [
            {"sid": sid, "point": Point(lon, lat)}
            for sid, lon, lat in bind.execute(sa.select(stations.c[:3]))
        ]
        if points:
            bind.execute(
                stations.update()
                .where(stations.c.station_id == sa.bindparam("sid"))
                .values(geom=sa.bindparam("point")),
                points,
            )
    _gist("stations")

    districts = _outline_table("districts")
    op.create_index("ix_districts_name", "districts", ["name"])
    subdistricts = _outline_table("subdistricts")
    op.create_index("ix_subdistricts_district_name", "subdistricts", ["district", "name"])
    boundaries = sa.table(
        "boundaries",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("level", sa.String),
        sa.column("parent", sa.String),
        sa.column("geometry", sa.JSON),
    )
    rows = bind.execute(sa.select(boundaries).order_by(boundaries.c.id)).mappings().all()
    moved = [{"name": row["name"], "geom": _multipolygon(shape(row["geometry"]))} for row in rows]
    district_rows = [m for m, r in zip(moved, rows, strict=True) if r["level"] == "district"]
    subdistrict_rows = [
        {**m, "district": r["parent"]}
        for m, r in zip(moved, rows, strict=True)
        if r["level"] == "subdistrict"
    ]
    if district_rows:
        op.bulk_insert(districts, district_rows)
    if subdistrict_rows:
        op.bulk_insert(subdistricts, subdistrict_rows)
    op.drop_index("ix_boundaries_level", table_name="boundaries")
    op.drop_table("boundaries")
    _gist("districts")
    _gist("subdistricts")

    op.create_table(
        "coverage_cells",
        sa.Column("cell", sa.String(15), primary_key=True),
        sa.Column("district", sa.String(100), nullable=False),
        sa.Column("subdistrict", sa.String(100)),
        sa.Column("zone", sa.String(201), nullable=False),
        sa.Column("demand_workers", sa.Float, nullable=False),
        sa.Column("coverage_count", sa.Integer, nullable=False),
        sa.Column("access_score", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("geom", GeometryColumn("POLYGON"), nullable=False),
        sa.Column("centre", GeometryColumn("POINT"), nullable=False),
    )
    for column in ("district", "zone", "status"):
        op.create_index(f"ix_coverage_cells_{column}", "coverage_cells", [column])
    op.create_index("ix_coverage_cells_lat_lon", "coverage_cells", ["lat", "lon"])
    _gist("coverage_cells")

    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("districts", sa.JSON),
        sa.Column("stations", sa.JSON, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME),
        sa.Column("revoked_at", UTC_TIME),
    )

    op.add_column("alerts", sa.Column("geom", GeometryColumn("GEOMETRY")))
    _backfill_alert_geometry(bind)
    _gist("alerts")


def _backfill_alert_geometry(bind: sa.Connection) -> None:
    """Station alerts get the station's point, zone alerts their zone's outline."""
    op.execute(
        "UPDATE alerts SET geom = (SELECT s.geom FROM stations s WHERE s.station_id = "
        "alerts.subject) WHERE kind <> 'zone_underserved'"
    )
    alerts = sa.table(
        "alerts",
        sa.column("alert_id", sa.String),
        sa.column("kind", sa.String),
        sa.column("subject", sa.String),
        sa.column("geom", GeometryColumn("GEOMETRY")),
    )
    subdistricts = sa.table(
        "subdistricts",
        sa.column("name", sa.String),
        sa.column("district", sa.String),
        sa.column("geom", GeometryColumn("MULTIPOLYGON")),
    )
    outlines = {
        (f"{district}/{name}" if district else name): geom
        for name, district, geom in bind.execute(sa.select(subdistricts))
    }
    updates = []
    zone_alerts = sa.select(alerts.c.alert_id, alerts.c.subject).where(
        alerts.c.kind == "zone_underserved"
    )
    for alert_id, subject in bind.execute(zone_alerts):
        geom = outlines.get(subject)
        if geom is None and h3.is_valid_cell(subject):
            geom = Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(subject)])
        if geom is not None:
            updates.append({"aid": alert_id, "outline": geom})
    if updates:
        bind.execute(
            alerts.update()
            .where(alerts.c.alert_id == sa.bindparam("aid"))
            .values(geom=sa.bindparam("outline")),
            updates,
        )


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("alerts") as batch:
        if _postgres():
            batch.drop_index("ix_alerts_geom")
        batch.drop_column("geom")
    op.drop_table("api_keys")
    op.drop_table("coverage_cells")

    boundaries = op.create_table(
        "boundaries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent", sa.String(100)),
        sa.Column("geometry", sa.JSON, nullable=False),
    )
    op.create_index("ix_boundaries_level", "boundaries", ["level"])
    rows: list[dict[str, Any]] = []
    for level in ("district", "subdistrict"):
        table = sa.table(
            f"{level}s",
            sa.column("id", sa.Integer),
            sa.column("name", sa.String),
            sa.column("district" if level == "subdistrict" else "name", sa.String),
            sa.column("geom", GeometryColumn("MULTIPOLYGON")),
        )
        parent = table.c.district if level == "subdistrict" else sa.null()
        query = sa.select(table.c.name, parent, table.c.geom).order_by(table.c.id)
        rows += [
            {
                "name": name,
                "level": level,
                "parent": parent_name,
                "geometry": json.loads(json.dumps(mapping(geom))),
            }
            for name, parent_name, geom in bind.execute(query)
        ]
    if rows:
        op.bulk_insert(boundaries, rows)
    op.drop_table("subdistricts")
    op.drop_table("districts")

    with op.batch_alter_table("stations") as batch:
        if _postgres():
            batch.drop_index("ix_stations_geom")
            batch.drop_index("ix_stations_geog")
        batch.drop_column("geom")
