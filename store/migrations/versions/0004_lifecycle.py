"""Station lifecycle: the registry's audit log of changes, QR poster generations, and mobile
units' stops.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("stations") as stations:
        stations.add_column(sa.Column("stops", sa.JSON))
    op.create_table(
        "station_changes",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.String(36), nullable=False),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("old", sa.JSON),
        sa.Column("new", sa.JSON),
    )
    op.create_index("ux_station_changes_change_id", "station_changes", ["change_id"], unique=True)
    op.create_index(
        "ux_station_changes_station_version",
        "station_changes",
        ["station_id", "version"],
        unique=True,
    )
    op.create_table(
        "scan_tokens",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("rotated_at", UTC_TIME, nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("stations") as stations:
        stations.drop_column("stops")
    op.drop_table("scan_tokens")
    op.drop_table("station_changes")
