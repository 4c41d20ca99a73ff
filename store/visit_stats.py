"""Daily visit rollups: added to as visits are archived, read per area and period. Visits
are counted on the station's current district and subdistrict.

Beside them, which workers visited each subdistrict in a month: a month's distinct workers
need a distinct over every station-day presence otherwise (a million rows for a district's
month, most of the monthly report's second). They are kept on the area each station was in
when its workers were counted; a month in which a station has since moved (or left the
registry) is read from the daily rollups until `recount` rebuilds it, so the numbers are
always those of the stations' current areas. Visits, people and services are sums: the
daily rollups give them fast enough for any range.

The follower writes after every page of visits while the embedded runtime's ingest and
processor wait for the interpreter, so the rows go to the driver as they are (`executemany_direct`)
and the monthly rows take their areas from the registry inside the database."""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, literal, or_, select, text
from sqlalchemy.orm import Session

from schemas.visit_stats import StatsArea, StatsPeriod, VisitStats
from store.database import executemany_direct
from store.tables import (
    StationRow,
    VisitDayRow,
    VisitDayServiceRow,
    VisitDayWorkerRow,
    VisitMonthStationRow,
    VisitMonthWorkerRow,
)

MONTH_CHARS = 7  # YYYY-MM of a YYYY-MM-DD day
WHOLE = "*"  # the period or area label of a total
FIRST_DAY = "01"
LAST_DAY = "31"  # days are compared as text: YYYY-MM-31 ends any month
NO_SUBDISTRICT = ""

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
# A presence joins its month's workers of the station's area of now; none when the station
# is not in the registry (the daily rollups count its visits nowhere either).
MONTH_WORKER_NAMES = ("day", "worker", "station")  # in the order the SQL takes them
ADD_MONTH_WORKERS = text(
    f"""INSERT INTO visit_month_workers (month, district, subdistrict, worker)
    SELECT substr(:day, 1, {MONTH_CHARS}), district, coalesce(subdistrict, '{NO_SUBDISTRICT}'),
        :worker
    FROM stations WHERE station_id = :station
    ON CONFLICT DO NOTHING"""
)
# The area a station's workers of a month are counted in, as the month's first write found
# it (district null: not in the registry); a later move shows as a difference from it. (The
# cast: PostgreSQL must not take the station for text in one place, varchar in the other.)
STATION_NAMES = ("month", "station")
ADD_MONTH_STATIONS = text(
    f"""INSERT INTO visit_month_stations (month, station_id, district, subdistrict)
    SELECT counted.month, counted.station_id, stations.district,
        coalesce(stations.subdistrict, '{NO_SUBDISTRICT}')
    FROM (SELECT :month AS month, CAST(:station AS VARCHAR) AS station_id) AS counted
    LEFT JOIN stations ON stations.station_id = counted.station_id
    WHERE true
    ON CONFLICT DO NOTHING"""
)

Counts = list[tuple[str, str, int]]  # (period, area, distinct workers)


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
        uses, and (day, station, worker key) presences to the rollups; the presences also to
        their month's workers of each station's area, which is recorded for the month."""
        if visits:
            days = ((d, s, k, v, p) for (d, s, k), (v, p) in visits.items())
            executemany_direct(self._session, ADD_DAYS, DAY_NAMES, {}, days)
            # Every presence's (day, station) is among the visits'.
            stations = {(d[:MONTH_CHARS], s) for d, s, _ in visits}
            executemany_direct(self._session, ADD_MONTH_STATIONS, STATION_NAMES, {}, stations)
        if services:
            uses = ((d, s, k, n) for (d, s, k), n in services.items())
            executemany_direct(self._session, ADD_SERVICES, SERVICE_NAMES, {}, uses)
        if workers:
            executemany_direct(self._session, ADD_WORKERS, WORKER_NAMES, {}, workers)
            seen = [(d, w, s) for d, s, w in workers]
            executemany_direct(self._session, ADD_MONTH_WORKERS, MONTH_WORKER_NAMES, {}, seen)

    def moved_months(self) -> list[str]:
        """Months in which a station's workers were counted in an area that is no longer its
        own (or it left the registry, or joined it): what `recount` rebuilds."""
        m, st = VisitMonthStationRow, StationRow
        stmt = (
            select(m.month)
            .distinct()
            .outerjoin(st, st.station_id == m.station_id)
            .where(_moved(m, st))
            .order_by(m.month)
        )
        return list(self._session.scalars(stmt))

    def recount(self, month: str) -> None:
        """Rebuilds a month's workers per area, and the areas they are counted in, from the
        daily rollups on the stations' areas of now."""
        for model in (VisitMonthWorkerRow, VisitMonthStationRow):
            self._session.execute(delete(model).where(model.month == month))
        start, end = f"{month}-{FIRST_DAY}", f"{month}-{LAST_DAY}"
        at = literal(month)
        sub = func.coalesce(StationRow.subdistrict, NO_SUBDISTRICT)
        w, d = VisitDayWorkerRow, VisitDayRow
        workers = (
            select(at, StationRow.district, sub, w.worker)
            .join(StationRow, StationRow.station_id == w.station_id)
            .where(w.day.between(start, end))
            .distinct()
        )
        stations = (
            select(at, d.station_id, StationRow.district, sub)
            .outerjoin(StationRow, StationRow.station_id == d.station_id)
            .where(d.day.between(start, end))
            .distinct()
        )
        for table, names, query in (
            (
                VisitMonthWorkerRow.__table__,
                ["month", "district", "subdistrict", "worker"],
                workers,
            ),
            (
                VisitMonthStationRow.__table__,
                ["month", "station_id", "district", "subdistrict"],
                stations,
            ),
        ):
            self._session.execute(table.insert().from_select(names, query))

    def stats(
        self, district: str, start: str, end: str, period: StatsPeriod | None, by: StatsArea | None
    ) -> list[VisitStats]:
        """Per period and area within [start, end] (days); None for either: the whole of it.
        Distinct workers of whole months per subdistrict or district come from the month's
        workers."""
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
        months = _whole_months(start, end)
        if (
            period is StatsPeriod.month
            and by in (StatsArea.subdistrict, StatsArea.district)
            and months
            and self._counted_as_now(district, *months)
        ):
            distinct = self._month_distinct(district, *months, by)
        else:
            distinct = self._distinct(district, start, end, period, by)
        for when, area, n in distinct:
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
        """Distinct workers over the whole district and range (not a sum: people move); over
        whole months, from the month's workers."""
        months = _whole_months(start, end)
        if months and self._counted_as_now(district, *months):
            m = VisitMonthWorkerRow
            workers = (
                select(m.worker)
                .where(m.district == district, m.month.between(*months))
                .group_by(m.worker)  # a hash of the workers, not a sort of every row
                .subquery()
            )
            return int(self._session.scalar(select(func.count()).select_from(workers)) or 0)
        found = self._distinct(district, start, end, None, None)
        return found[0][2] if found else 0

    def _counted_as_now(self, district: str, first: str, last: str) -> bool:
        """Whether the month's workers of these months count every station that is or was
        in the district on its area of now."""
        m, st = VisitMonthStationRow, StationRow
        stmt = (
            select(m.month)
            .outerjoin(st, st.station_id == m.station_id)
            .where(
                m.month.between(first, last),
                or_(m.district == district, st.district == district),
                _moved(m, st),
            )
            .limit(1)
        )
        return self._session.execute(stmt).first() is None

    def _month_distinct(self, district: str, first: str, last: str, by: StatsArea) -> Counts:
        """Distinct workers per month and subdistrict (a count of rows) or district."""
        m = VisitMonthWorkerRow
        within = (m.district == district, m.month.between(first, last))
        stmt: Select[Any]
        if by is StatsArea.subdistrict:
            stmt = (
                select(m.month, m.subdistrict, func.count())
                .where(*within)
                .group_by(m.month, m.subdistrict)
            )
        else:
            workers = select(m.month, m.worker).where(*within).group_by(m.month, m.worker)
            per = workers.subquery()
            stmt = select(per.c.month, literal(district), func.count()).group_by(per.c.month)
        return [(when, area, int(n)) for when, area, n in self._session.execute(stmt)]

    def _distinct(
        self, district: str, start: str, end: str, period: StatsPeriod | None, by: StatsArea | None
    ) -> Counts:
        p, a = _period(VisitDayWorkerRow.day, period), _area(by)
        stmt = (
            select(p, a, func.count(func.distinct(VisitDayWorkerRow.worker)))
            .join(StationRow, StationRow.station_id == VisitDayWorkerRow.station_id)
            .where(StationRow.district == district, VisitDayWorkerRow.day.between(start, end))
            .group_by(p, a)
        )
        return [(when, area, int(n)) for when, area, n in self._session.execute(stmt)]


def _whole_months(start: str, end: str) -> tuple[str, str] | None:
    """(first, last) YYYY-MM when [start, end] is made of whole months, else None."""
    first, last = start[:MONTH_CHARS], end[:MONTH_CHARS]
    try:
        year, month = (int(part) for part in last.split("-"))
        last_day = f"{last}-{calendar.monthrange(year, month)[1]:02d}"
    except ValueError:
        return None
    if start > f"{first}-{FIRST_DAY}" or end < last_day or first > last:
        return None
    return first, last


def _moved(month_station: Any, station: Any) -> ColumnElement[bool]:
    """A station counted in an area of a month that is not its area now (or gone)."""
    return or_(
        month_station.district.is_distinct_from(station.district),
        month_station.subdistrict != func.coalesce(station.subdistrict, NO_SUBDISTRICT),
    )


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
