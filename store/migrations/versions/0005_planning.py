"""The planner workbench: saved what-if scenarios, and the geocoder's answers (a cache).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "planning_scenarios",
        sa.Column("scenario_id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("district", sa.String(100), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
    )
    op.create_index("ix_planning_scenarios_district", "planning_scenarios", ["district"])
    op.create_table(
        "geocode_cache",
        sa.Column("geocoder", sa.String(32), primary_key=True),
        sa.Column("address", sa.String(500), primary_key=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("looked_up_at", UTC_TIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("geocode_cache")
    op.drop_index("ix_planning_scenarios_district", table_name="planning_scenarios")
    op.drop_table("planning_scenarios")
