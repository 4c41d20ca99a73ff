"""Which workers visited each subdistrict in a month, beside the daily rollups: a month's
distinct workers per subdistrict took a distinct over every station-day presence (a million
rows for a district's month, most of the monthly report's second). Filled from the daily
rollups on the stations' areas of now.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

MONTH = sa.String(7)  # YYYY-MM
AREA = sa.String(100)
STATION_ID = sa.String(64)

# As the application recounts a month (store/visit_stats.py).
FILL = (
    """INSERT INTO visit_month_workers (month, district, subdistrict, worker)
    SELECT DISTINCT substr(v.day, 1, 7), s.district, coalesce(s.subdistrict, ''), v.worker
    FROM visit_day_workers v JOIN stations s ON s.station_id = v.station_id""",
    """INSERT INTO visit_month_stations (month, station_id, district, subdistrict)
    SELECT DISTINCT substr(v.day, 1, 7), v.station_id, s.district, coalesce(s.subdistrict, '')
    FROM visit_days v LEFT JOIN stations s ON s.station_id = v.station_id""",
)


def upgrade() -> None:
    op.create_table(
        "visit_month_workers",
        sa.Column("month", MONTH, primary_key=True),
        sa.Column("district", AREA, primary_key=True),
        sa.Column("subdistrict", AREA, primary_key=True),
        sa.Column("worker", sa.BigInteger(), primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "visit_month_stations",
        sa.Column("month", MONTH, primary_key=True),
        sa.Column("station_id", STATION_ID, primary_key=True),
        sa.Column("district", AREA, nullable=True),
        sa.Column("subdistrict", AREA, nullable=False),
    )
    for statement in FILL:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("visit_month_stations")
    op.drop_table("visit_month_workers")
