"""The rollup writes hand SQLite's driver the rows as they are given: each statement takes its
parameters in the order of its names, so no row is rebuilt on the follower's thread (which
the embedded runtime's ingest and processor wait for)."""

from __future__ import annotations

from sqlalchemy.dialects import sqlite

from store.visit_stats import (
    ADD_DAYS,
    ADD_MONTH_STATIONS,
    ADD_MONTH_WORKERS,
    ADD_SERVICES,
    ADD_WORKERS,
    DAY_NAMES,
    MONTH_WORKER_NAMES,
    SERVICE_NAMES,
    STATION_NAMES,
    WORKER_NAMES,
)

WRITES = [
    (ADD_DAYS, DAY_NAMES),
    (ADD_SERVICES, SERVICE_NAMES),
    (ADD_WORKERS, WORKER_NAMES),
    (ADD_MONTH_WORKERS, MONTH_WORKER_NAMES),
    (ADD_MONTH_STATIONS, STATION_NAMES),
]


def test_each_write_takes_its_parameters_in_the_order_of_its_names() -> None:
    dialect = sqlite.dialect()
    for stmt, names in WRITES:
        assert stmt.compile(dialect=dialect).positiontup == list(names), stmt
