"""District unions: what people do about alerts, webhooks per district and their delivery log,
coverage history per district and subdistrict, daily visit rollups.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_actions",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(200), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("by_key_id", sa.String(64), nullable=False),
        sa.Column("by_label", sa.String(200), nullable=False),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index("ix_alert_actions_alert_id", "alert_actions", ["alert_id"])
    op.create_table(
        "webhooks",
        sa.Column("webhook_id", sa.String(64), primary_key=True),
        sa.Column("district", sa.String(100), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("flavour", sa.String(32), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_webhooks_district", "webhooks", ["district"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sa.String(64), primary_key=True),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(200), nullable=False),
        sa.Column("transition", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("next_attempt_at", UTC_TIME, nullable=True),
        sa.Column("delivered_at", UTC_TIME, nullable=True),
    )
    op.create_index("ix_webhook_deliveries_webhook_id", "webhook_deliveries", ["webhook_id"])
    op.create_index(
        "ix_webhook_deliveries_status_next", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_table(
        "coverage_history",
        sa.Column("district", sa.String(100), primary_key=True),
        sa.Column("subdistrict", sa.String(100), primary_key=True),
        sa.Column("interval_s", sa.Integer(), primary_key=True),
        sa.Column("at", UTC_TIME, primary_key=True),
        *(
            sa.Column(name, sa.Float(), nullable=False)
            for name in (
                "coverage_pct",
                "demand_workers",
                "uncovered_demand_workers",
                "available",
                "degraded",
                "closed",
                "silent",
                "open_alerts",
            )
        ),
    )
    op.create_table(
        "visit_days",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("worker_kind", sa.String(32), primary_key=True),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
    )
    op.create_table(
        "visit_day_services",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("service", sa.String(32), primary_key=True),
        sa.Column("uses", sa.Integer(), nullable=False),
    )
    op.create_table(
        "visit_day_workers",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("worker", sa.BigInteger(), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("visit_day_workers")
    op.drop_table("visit_day_services")
    op.drop_table("visit_days")
    op.drop_table("coverage_history")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("alert_actions")
