"""Daily visit rollups: added to as visits are archived, read per area and period. Visits
are counted on the station's current district and subdistrict.

The follower writes after every page of visits while the embedded runtime's ingest and
processor wait for the interpreter, so the rows go to the driver as they are (`_write`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from schemas.visit_stats import StatsArea, StatsPeriod, VisitStats
from store.database import executemany_direct
from store.tables import StationRow, VisitDayRow, VisitDayServiceRow, VisitDayWorkerRow

MONTH_CHARS = 7  # YYYY-MM of a YYYY-MM-DD day
WHOLE = "*"  # the period or area label of a total

# The writes, in SQL both SQLite and PostgreSQL read: compiled in microseconds on every
# page, where the constructs of either dialect take a millisecond.
DAY_NAMES = ("day", "station", "kind", "visits", "people")
ADD_DAYS = text(
    """INSERT INTO visit_days (day, station_id, worker_kind, visits, people)
    VALUES (:day, :station, :kind, :visits, :people)
    ON CONFLICT (day, station_id, worker_kind) DO UPDATE SET
        visits = visit_days.visits + excluded.visits,
        people = visit_days.people + excluded.people"""
)
SERVICE_NAMES = ("day", "station", "service", "uses")
ADD_SERVICES = text(
    """INSERT INTO visit_day_services (day, station_id, service, uses)
    VALUES (:day, :station, :service, :uses)
    ON CONFLICT (day, station_id, service) DO UPDATE SET
        uses = visit_day_services.uses + excluded.uses"""
)
WORKER_NAMES = ("day", "station", "worker")
ADD_WORKERS = text(
    """INSERT INTO visit_day_workers (day, station_id, worker)
    VALUES (:day, :station, :worker)
    ON CONFLICT DO NOTHING"""
)


class VisitRollups:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        visits: Mapping[tuple[str, str, str], tuple[int, int]],
        services: Mapping[tuple[str, str, str], int],
        workers: set[tuple[str, str, int]],
    ) -> None:
        """Adds (day, station, worker kind) -> (visits, people), (day, station, service) ->
        uses, and (day, station, worker key) presences to the rollups."""
        if visits:
            days = ((d, s, k, v, p) for (d, s, k), (v, p) in visits.items())
            _write(self._session, ADD_DAYS, DAY_NAMES, days)
        if services:
            uses = ((d, s, k, n) for (d, s, k), n in services.items())
            _write(self._session, ADD_SERVICES, SERVICE_NAMES, uses)
        if workers:
            _write(self._session, ADD_WORKERS, WORKER_NAMES, workers)

    def stats(
        self, district: str, start: str, end: str, period: StatsPeriod | None, by: StatsArea | None
    ) -> list[VisitStats]:
        """Per period and area within [start, end] (days); None for either: the whole of it."""
        found: dict[tuple[str, str], dict[str, Any]] = defaultdict(
            lambda: {"visits": 0, "people": 0, "distinct_workers": 0, "kinds": {}, "services": {}}
        )
        for model, extra in (
            (VisitDayRow, ("worker_kind", "visits", "people")),
            (VisitDayServiceRow, ("service", "uses")),
        ):
            p, a = _period(model.day, period), _area(by)
            columns = [p, a, getattr(model, extra[0])]
            sums = [func.sum(getattr(model, name)) for name in extra[1:]]
            stmt = (
                select(*columns, *sums)
                .join(StationRow, StationRow.station_id == model.station_id)
                .where(StationRow.district == district, model.day.between(start, end))
                .group_by(*columns)
            )
            for row in self._session.execute(stmt):
                entry = found[(row[0], row[1])]
                if model is VisitDayRow:
                    entry["kinds"][row[2]] = int(row[3])
                    entry["visits"] += int(row[3])
                    entry["people"] += int(row[4])
                else:
                    entry["services"][row[2]] = int(row[3])
        for when, area, n in self._distinct(district, start, end, period, by):
            found[(when, area)]["distinct_workers"] = n
        return [
            VisitStats(
                period=when,
                area=area,
                visits=e["visits"],
                people=e["people"],
                distinct_workers=e["distinct_workers"],
                by_worker_kind=dict(sorted(e["kinds"].items())),
                services_used=dict(sorted(e["services"].items())),
            )
            for (when, area), e in sorted(found.items())
        ]

    def distinct_workers(self, district: str, start: str, end: str) -> int:
        """Distinct workers over the whole district and range (not a sum: people move)."""
        found = self._distinct(district, start, end, None, None)
        return found[0][2] if found else 0

    def _distinct(
        self, district: str, start: str, end: str, period: StatsPeriod | None, by: StatsArea | None
    ) -> list[tuple[str, str, int]]:
        p, a = _period(VisitDayWorkerRow.day, period), _area(by)
        stmt = (
            select(p, a, func.count(func.distinct(VisitDayWorkerRow.worker)))
            .join(StationRow, StationRow.station_id == VisitDayWorkerRow.station_id)
            .where(StationRow.district == district, VisitDayWorkerRow.day.between(start, end))
            .group_by(p, a)
        )
        return [(when, area, int(n)) for when, area, n in self._session.execute(stmt)]


def _write(
    session: Session, stmt: TextClause, names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Rows of plain text and integers (nothing for a bind processor to convert) through the
    driver's executemany. Where the driver's parameters are positional in the order of
    `names` (SQLite's, as these statements are written), the rows go as they are, without
    even `executemany_direct`'s per-row reordering: over a page's presences that cost as much
    as the database's inserts, on the thread the runtime's ingest and processor wait for."""
    compiled = stmt.compile(dialect=session.get_bind().dialect)
    if compiled.positiontup != list(names):
        executemany_direct(session, stmt, names, {}, rows)
        return
    params = rows if isinstance(rows, list) else list(rows)
    if params:
        session.connection().exec_driver_sql(compiled.string, params)


def _period(day: Any, period: StatsPeriod | None) -> ColumnElement[str]:
    if period is StatsPeriod.day:
        return day
    if period is StatsPeriod.month:
        return func.substr(day, 1, MONTH_CHARS)
    return literal(WHOLE)


def _area(by: StatsArea | None) -> ColumnElement[str]:
    if by is StatsArea.station:
        return StationRow.station_id
    if by is StatsArea.subdistrict:
        return func.coalesce(StationRow.subdistrict, "")
    if by is StatsArea.district:
        return StationRow.district
    return literal(WHOLE)
