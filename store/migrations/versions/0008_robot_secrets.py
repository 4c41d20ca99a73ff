"""Webhook secrets up to 128 characters: a DingTalk or Feishu group robot that checks its own
signature is given the secret its settings show, and DingTalk's (67 characters) does not fit
the 64 of the secrets generated here. (SQLite ignores the length; PostgreSQL enforces it.)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

GENERATED_SECRET_CHARS = 64
WIDER_SECRET_CHARS = 128


def upgrade() -> None:
    with op.batch_alter_table("webhooks") as webhooks:
        webhooks.alter_column(
            "secret",
            existing_type=sa.String(GENERATED_SECRET_CHARS),
            type_=sa.String(WIDER_SECRET_CHARS),
            existing_nullable=False,
        )


def downgrade() -> None:
    """Refuses while a secret longer than the old column is kept: cutting it would leave a
    webhook whose robot refuses every post."""
    longer = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM webhooks WHERE length(secret) > :chars"),
        {"chars": GENERATED_SECRET_CHARS},
    )
    if longer:
        raise RuntimeError(
            f"{longer} webhook(s) keep a robot's secret longer than {GENERATED_SECRET_CHARS} "
            "characters, which revision 0007 cannot hold: delete them first "
            "(DELETE /v1/webhooks/{id}), and create them again after upgrading"
        )
    with op.batch_alter_table("webhooks") as webhooks:
        webhooks.alter_column(
            "secret",
            existing_type=sa.String(WIDER_SECRET_CHARS),
            type_=sa.String(GENERATED_SECRET_CHARS),
            existing_nullable=False,
        )
