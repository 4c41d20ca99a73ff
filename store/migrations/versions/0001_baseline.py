"""Baseline: the schema `create_schema` made before migrations existed.

A database made by an earlier version (tables, no alembic_version) is stamped at this revision
and upgraded from here; see store.migrate.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
SEQUENCE64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stations",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("district", sa.String(100), nullable=False),
        sa.Column("subdistrict", sa.String(100)),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("amenities", sa.JSON, nullable=False),
        sa.Column("opening_hours", sa.String(200)),
        sa.Column("operator", sa.String(200)),
    )
    op.create_index("ix_stations_district_subdistrict", "stations", ["district", "subdistrict"])

    op.create_table(
        "events",
        sa.Column("seq", SEQUENCE64, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("occurred_at", UTC_TIME, nullable=False),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_index("ux_events_event_id", "events", ["event_id"], unique=True)
    op.create_index("ix_events_station_occurred", "events", ["station_id", "occurred_at"])
    op.create_index("ix_events_status_seq", "events", ["status", "seq"])
    op.create_index("ix_events_type_occurred", "events", ["type", "occurred_at"])

    op.create_table(
        "station_records",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_since", UTC_TIME),
        sa.Column("record", sa.JSON, nullable=False),
    )
    op.create_index("ix_station_records_state", "station_records", ["state"])

    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("district", sa.String(100)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("condition_since", UTC_TIME, nullable=False),
        sa.Column("clear_since", UTC_TIME),
        sa.Column("opened_at", UTC_TIME),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("resolved_at", UTC_TIME),
        sa.Column("evidence", sa.JSON, nullable=False),
    )
    op.create_index("ix_alerts_district", "alerts", ["district"])
    op.create_index("ix_alerts_status_updated", "alerts", ["status", "updated_at"])
    op.create_index("ix_alerts_kind_status", "alerts", ["kind", "status"])

    op.create_table(
        "demand_cells",
        sa.Column("cell", sa.String(15), primary_key=True),
        sa.Column("demand_workers", sa.Float, nullable=False),
        sa.Column("district", sa.String(100), nullable=False),
        sa.Column("subdistrict", sa.String(100)),
    )
    op.create_index("ix_demand_cells_district", "demand_cells", ["district"])

    op.create_table(
        "boundaries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent", sa.String(100)),
        sa.Column("geometry", sa.JSON, nullable=False),
    )
    op.create_index("ix_boundaries_level", "boundaries", ["level"])

    op.create_table(
        "meta",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "meta",
        "boundaries",
        "demand_cells",
        "alerts",
        "station_records",
        "events",
        "stations",
    ):
        op.drop_table(table)
