"""Planner views on PostgreSQL: station status, underserved cells, coverage by district.

SQLite has no planners' tools to serve, so nothing happens there. README.md ("SQL and QGIS")
shows how to query them and add them as QGIS layers.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

VIEWS = {
    "v_station_status": """
        SELECT s.station_id, s.name, s.kind, s.district, s.subdistrict, s.capacity,
               s.operator, COALESCE(r.state, 'silent') AS state, r.state_since, s.geom
        FROM stations s
        LEFT JOIN station_records r ON r.station_id = s.station_id
    """,
    "v_underserved_cells": """
        SELECT cell, district, subdistrict, zone, demand_workers, coverage_count,
               access_score, updated_at, geom
        FROM coverage_cells
        WHERE status = 'underserved'
    """,
    "v_district_coverage": """
        SELECT d.id, d.name AS district, cov.cells, cov.demand_workers,
               cov.underserved_cells, cov.underserved_demand_workers,
               CASE WHEN cov.demand_workers > 0 THEN round(
                   (100 * (1 - cov.underserved_demand_workers / cov.demand_workers))::numeric, 2
               ) END AS demand_served_pct,
               st.stations, st.stations_available, d.geom
        FROM districts d
        CROSS JOIN LATERAL (
            SELECT count(*) AS cells,
                   COALESCE(sum(c.demand_workers), 0) AS demand_workers,
                   count(*) FILTER (WHERE c.status = 'underserved') AS underserved_cells,
                   COALESCE(sum(c.demand_workers) FILTER (WHERE c.status = 'underserved'), 0)
                       AS underserved_demand_workers
            FROM coverage_cells c
            WHERE ST_Intersects(d.geom, c.centre)
        ) cov
        CROSS JOIN LATERAL (
            SELECT count(*) AS stations,
                   count(*) FILTER (WHERE v.state = 'available') AS stations_available
            FROM v_station_status v
            WHERE ST_Intersects(d.geom, v.geom)
        ) st
    """,
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, query in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {query}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW IF EXISTS {name}")
